"""Tokens and estimated cost per model (today, this month, in total) and the daily cap.

Pure: works on the store's usage ledger rows and the config's price table.
Days are Pacific days, the same days the service's per-day quotas use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mediasync.config import TIER_FACTORS, LimitsConfig, Price
from mediasync.gemini.quota import pacific_day, pacific_month

# day, model, requests, prompt, output, thoughts, tier (the model and tier that served)
Row = tuple[str, str, int, int, int, int, str]
# What a dated or preview name adds to its family's: "-001", "-preview", "-preview-05-20",
# "-exp-0827", "-latest". Anything else ("-lite", "-image", "-tts") is another model.
_VERSION_SUFFIX = re.compile(r"-(?:\d{3}|preview(?:-[\w-]+)?|exp(?:-[\w-]+)?|latest)$")


@dataclass
class Spend:
    requests: int = 0
    prompt: int = 0
    output: int = 0
    thoughts: int = 0
    cost: float | None = 0.0  # None: no price known for a model in it

    @property
    def tokens(self) -> int:
        return self.prompt + self.output + self.thoughts

    def add(self, row: Row, price: Price | None) -> None:
        day, _, n, p, o, t, tier = row
        self.requests += n
        self.prompt += p
        self.output += o
        self.thoughts += t
        if price is None or self.cost is None:
            self.cost = None
        else:
            # The price of the day the calls were made, at the tier that served them.
            self.cost += row_cost(price.on(day), p, o + t) * TIER_FACTORS.get(tier, 1.0)

    def merge(self, other: Spend) -> None:
        self.requests += other.requests
        self.prompt += other.prompt
        self.output += other.output
        self.thoughts += other.thoughts
        self.cost = None if self.cost is None or other.cost is None else self.cost + other.cost

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "prompt": self.prompt, "output": self.output,
                "thoughts": self.thoughts, "tokens": self.tokens,
                "cost_usd": None if self.cost is None else round(self.cost, 6)}


def row_cost(price: Price, prompt: int, output: int) -> float:
    """Dollars for these tokens; thought tokens go in ``output`` (billed as output)."""
    return (prompt * price.input + output * price.output) / 1_000_000


def price_of(prices: Mapping[str, Price], model: str) -> Price | None:
    """The model's price, or None: a model not in the table is counted in tokens with
    "price unknown", never at another model's price."""
    model = model.removeprefix("models/")
    if model in prices:
        return prices[model]
    # A dated or preview name ("gemini-2.5-flash-preview-05-20") costs as its family;
    # "gemini-3.5-flash-image" is not "gemini-3.5-flash".
    best = max((m for m in prices if model.startswith(m + "-")
                and _VERSION_SUFFIX.fullmatch(model[len(m):])), key=len, default=None)
    return prices[best] if best else None


def summary(rows: Iterable[Row], prices: Mapping[str, Price], now: float
            ) -> dict[str, dict[str, Spend]]:
    """model -> {"today", "month", "total"} -> Spend."""
    day, month = pacific_day(now), pacific_month(now)
    out: dict[str, dict[str, Spend]] = {}
    for row in rows:
        mine = out.setdefault(row[1], {"today": Spend(), "month": Spend(), "total": Spend()})
        price = price_of(prices, row[1])
        mine["total"].add(row, price)
        if row[0].startswith(month):
            mine["month"].add(row, price)
        if row[0] == day:
            mine["today"].add(row, price)
    return out


def today(rows: Iterable[Row], prices: Mapping[str, Price], now: float) -> Spend:
    day = pacific_day(now)
    total = Spend()
    for row in rows:
        if row[0] == day:
            total.add(row, price_of(prices, row[1]))
    return total


def cap_reached(spent: Spend, limits: LimitsConfig) -> str | None:
    """What the owner capped, in words, once today's spend reached it."""
    if limits.max_daily_tokens is not None and spent.tokens >= limits.max_daily_tokens:
        return f"daily token cap of {limits.max_daily_tokens:,}"
    if (limits.max_daily_cost is not None and spent.cost is not None
            and spent.cost >= limits.max_daily_cost):
        return f"daily cost cap of ${limits.max_daily_cost:.2f}"
    return None


def cap_words(limits: LimitsConfig) -> str:
    """The owner's cap, in words (the token cap first, as cap_reached says it)."""
    if limits.max_daily_tokens is not None:
        return f"daily token cap of {limits.max_daily_tokens:,}"
    return f"daily cost cap of ${limits.max_daily_cost or 0:.2f}"


# What one call is taken to cost before the ledger knows better: a caption with
# thinking on (258 image tokens, a prompt, ~1,200 of thoughts and answer).
DEFAULT_CALL = (1_500, 500)  # prompt, output tokens


def call_estimate(today_spent: Spend, rows: Iterable[Row], prices: Mapping[str, Price],
                  model: str) -> Spend:
    """What the next call is reserved at: today's average call, else the ledger's
    average for ``model`` (all days), else DEFAULT_CALL at its price."""
    base = today_spent if today_spent.requests else None
    if base is None:
        mine = Spend()
        for row in rows:
            if row[1] == model.removeprefix("models/"):
                mine.add(row, price_of(prices, row[1]))
        base = mine if mine.requests else None
    if base is None:
        prompt, output = DEFAULT_CALL
        price = price_of(prices, model)
        return Spend(1, prompt, output, 0, None if price is None else row_cost(price, prompt,
                                                                                 output))
    n = base.requests
    return Spend(1, -(-base.prompt // n), -(-base.output // n), -(-base.thoughts // n),
                 None if base.cost is None else base.cost / n)


def cap_passed(spent: Spend, held: Spend, need: Spend, limits: LimitsConfig) -> str | None:
    """What the owner capped, in words, when one more call of ``need`` on top of what
    was spent and what the calls in flight hold would pass it; None when it fits."""
    tokens = spent.tokens + held.tokens + need.tokens
    if limits.max_daily_tokens is not None and tokens > limits.max_daily_tokens:
        return (f"daily token cap of {limits.max_daily_tokens:,}: {spent.tokens:,} spent, "
                f"the next call takes about {need.tokens:,}; waiting for the next day")
    if limits.max_daily_cost is not None and None not in (spent.cost, held.cost, need.cost):
        assert spent.cost is not None and held.cost is not None and need.cost is not None
        if spent.cost + held.cost + need.cost > limits.max_daily_cost:
            return (f"daily cost cap of ${limits.max_daily_cost:.2f}: ${spent.cost:.2f} "
                    f"spent, the next call takes about ${need.cost:.4f}; waiting for the "
                    "next day")
    return None


def cap_holds(spent: Spend, rows: Iterable[Row], prices: Mapping[str, Price],
              limits: LimitsConfig, model: str) -> str | None:
    """The owner's cap in words while it holds generation with nothing in flight:
    reached, or the next call would pass it. None while there is room."""
    reached = cap_reached(spent, limits)
    if reached is not None or (limits.max_daily_tokens is None
                               and limits.max_daily_cost is None):
        return reached
    need = call_estimate(spent, rows, prices, model)
    return cap_words(limits) if cap_passed(spent, Spend(), need, limits) else None


def render(summ: Mapping[str, Mapping[str, Spend]]) -> list[str]:
    """Lines for `mediasync status`."""
    lines = []
    for model, spans in sorted(summ.items()):
        bits = []
        for span in ("today", "month", "total"):
            s = spans[span]
            cost = "price unknown" if s.cost is None else f"${s.cost:.4f}"
            label = "this month" if span == "month" else span
            bits.append(f"{label} {s.tokens:,} tokens ({s.thoughts:,} thoughts) ≈ {cost}")
        lines.append(f"{model}: " + " · ".join(bits))
    return lines
