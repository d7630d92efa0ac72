"""Model families and what each makes of the user's `thinking` and `media_resolution`.

Pure: the family is decided by the model's name, and, when a ``models.get`` answer is
known, by its ``thinking`` flag. The request fields (docs/service.md, "Knobs per family"):

- Gemini 2.5 takes ``thinkingConfig.thinkingBudget`` (tokens; 0 turns thinking off on
  Flash and Flash-Lite; 2.5 Pro cannot go below 128);
- Gemini 3.x takes ``thinkingConfig.thinkingLevel`` (MINIMAL, LOW, MEDIUM, HIGH);
  Flash cannot turn thinking fully off (MINIMAL is its floor), Pro takes LOW and HIGH
  only; sending both fields is a 400;
- older models (2.0, 1.5) do not think: no ``thinkingConfig`` at all.

``media_resolution`` goes in ``generationConfig.mediaResolution`` on 2.5 and 3.x. Gemini 3
also takes it per part, but that form is documented for v1alpha only, and a request of
ours carries one media part: the request-wide field says the same thing on every version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

LEVELS = ("minimal", "low", "medium", "high")
THINKING_WORDS = ("off", *LEVELS)
Thinking = str | int  # "off", a level, or a token budget (-1: the model decides)

# A level word as a 2.5 budget (our mapping: the 2.5 docs give budgets only). "minimal"
# is Flash-Lite's smallest budget that still thinks.
_BUDGETS = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
# A budget as a 3.x level: at most this many tokens for each.
_LEVEL_CEILINGS = ((1024, "low"), (8192, "medium"))
PRO_MIN_BUDGET = 128  # 2.5 Pro refuses a smaller one

_VERSION = re.compile(r"^gemini-(\d+(?:\.\d+)?)(?:-|$)")


@dataclass(frozen=True)
class Family:
    """How a model takes its knobs."""

    name: Literal["3", "2.5", "none"]
    levels: tuple[str, ...] = ()  # the thinking levels it takes (3.x), lowest first
    can_turn_off: bool = False  # a budget of 0 stops thinking (2.5 Flash, Flash-Lite)
    resolution: bool = True  # takes generationConfig.mediaResolution

    @property
    def thinks(self) -> bool:
        return self.name != "none"


def family(model: str, thinking: bool | None = None) -> Family:
    """The family of ``model`` by its name (``gemini-3.5-flash-lite`` → 3.x); an alias
    such as ``gemini-flash-latest`` follows the newest family. ``thinking`` is the
    models.get answer's flag when known: a model that says it does not think gets no
    thinking fields whatever its name."""
    name = model.removeprefix("models/").lower()
    pro = "-pro" in name
    match = _VERSION.match(name)
    if match is not None:
        version = float(match.group(1))
    elif name.startswith("gemini-") and name.endswith("-latest"):
        version = 3.0  # aliases follow the newest family
    else:
        version = 0.0  # not a Gemini model we know (gemma, learnlm): send no knobs
    if thinking is False or version < 2.5:
        return Family("none", resolution=version >= 2.5)
    if version >= 3:
        return Family("3", ("low", "high") if pro else LEVELS)
    return Family("2.5", can_turn_off=not pro)


@dataclass(frozen=True)
class ThinkingRequest:
    """What a `thinking` value becomes for one model: the thinkingConfig to send (None:
    none) and, when the model cannot do what was asked, a note to log once."""

    config: dict[str, Any] | None
    note: str | None = None


def thinking_request(value: Thinking | None, fam: Family, model: str) -> ThinkingRequest:
    """The thinkingConfig for ``value`` on a model of ``fam``: thinkingBudget for 2.5,
    thinkingLevel for 3.x, never both; None: the model's default."""
    if value is None:
        return ThinkingRequest(None)
    if fam.name == "none":
        note = None
        if value not in ("off", 0):
            note = f"{model} does not think; thinking = {value!r} is not sent"
        return ThinkingRequest(None, note)
    if fam.name == "2.5":
        return _budget(value, fam, model)
    return _level(value, fam, model)


def _budget(value: Thinking, fam: Family, model: str) -> ThinkingRequest:
    budget = value if isinstance(value, int) else _BUDGETS.get(value, 0)
    if budget == 0 and not fam.can_turn_off:
        return ThinkingRequest({"thinkingBudget": PRO_MIN_BUDGET},
                               f"{model} cannot turn thinking off; sending its lowest "
                               f"budget, {PRO_MIN_BUDGET} tokens")
    if 0 < budget < PRO_MIN_BUDGET and not fam.can_turn_off:
        budget = PRO_MIN_BUDGET
    return ThinkingRequest({"thinkingBudget": budget})


def _level(value: Thinking, fam: Family, model: str) -> ThinkingRequest:
    if value == -1:
        return ThinkingRequest(None)  # "the model decides": its default level
    if isinstance(value, int):
        word = "off" if value == 0 else next(
            (lvl for ceiling, lvl in _LEVEL_CEILINGS if value <= ceiling), "high")
    else:
        word = value
    if word == "off":
        lowest = fam.levels[0]
        return ThinkingRequest({"thinkingLevel": lowest.upper()},
                               f"{model} cannot turn thinking off; sending thinkingLevel "
                               f"{lowest.upper()}, its lowest")
    if word in fam.levels:
        return ThinkingRequest({"thinkingLevel": word.upper()})
    # Not a level this model takes (Pro: LOW and HIGH only): the nearest one below,
    # the cheaper, else its lowest.
    below = [lvl for lvl in fam.levels if LEVELS.index(lvl) < LEVELS.index(word)]
    chosen = below[-1] if below else fam.levels[0]
    return ThinkingRequest({"thinkingLevel": chosen.upper()},
                           f"{model} takes thinking levels {', '.join(fam.levels)}; sending "
                           f"{chosen.upper()} for thinking = {word!r}")


def parse_thinking(value: Any) -> Thinking | None:
    """A `thinking` value as the config holds it, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= -1 else None
    if isinstance(value, str) and value.strip().lower() in THINKING_WORDS:
        return value.strip().lower()
    return None
