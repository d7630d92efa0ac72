"""Quota rules (pure, injected clock) and pacing against the emulator over loopback."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mediasync.emulator import Emulator, EmulatorConfig
from mediasync.gemini import (
    ApiError,
    Budgets,
    ClassLimits,
    GeminiClient,
    QuotaPaused,
    RetryPolicy,
    quota,
)
from mediasync.media.samples import png_bytes
from tests import wire_samples
from tests.helpers import VClock, quota_err


def wire_details(number: int) -> tuple[list[Any], str]:
    """(details, message) of a live 429 from the corpus copy in tests/wire/."""
    data = wire_samples.sample(number)
    err = (data.get("body") or {}).get("error") or {}
    return err.get("details") or data.get("body_fragment") or [], err.get("message", "")


# -- parsing the live answers --------------------------------------------------
def test_parses_every_live_429_shape() -> None:
    v25 = quota.violations(*wire_details(25))
    assert v25 == [quota.Violation("tpm", "GenerateContentInputTokensPerModelPerMinute-FreeTier",
                                   "gemini-2.5-flash", 250000)]
    v26 = quota.violations(*wire_details(26))
    assert [v.kind for v in v26] == ["tpm", "rpm", "rpd"] and all(v.limit is None for v in v26)
    assert quota.day_exhausted(v26) is v26[2]
    v27 = quota.violations(*wire_details(27))
    assert quota.day_exhausted(v27).model == "gemini-2.0-flash"
    v28 = quota.violations(*wire_details(28))
    assert v28[0].kind == "tpm" and v28[0].limit == 4000000
    assert quota.violations(*wire_details(29)) == []


def test_limit_from_message_lines_when_no_quota_value() -> None:
    metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
    details = [{"@type": quota.QUOTA_FAILURE, "violations": [
        {"quotaMetric": metric, "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
         "quotaDimensions": {"model": "gemini-2.0-flash"}}]}]
    msg = f"...\n* Quota exceeded for metric: {metric}, limit: 15, model: gemini-2.0-flash\n"
    assert quota.violations(details, msg)[0].limit == 15
    # Text only, no QuotaFailure detail: still named.
    assert quota.violations([], msg) == [quota.Violation("rpm", metric, "gemini-2.0-flash", 15)]


def test_next_reset_is_midnight_pacific_across_dst() -> None:
    # 2025-03-09 is 23 h long in Los Angeles; 10:00 PDT that day -> midnight is 14 h away.
    t = datetime.fromisoformat("2025-03-09T10:00:00-07:00").timestamp()
    assert quota.next_reset(t) - t == 14 * 3600
    t = datetime.fromisoformat("2025-11-02T00:30:00-07:00").timestamp()  # 25 h day
    assert quota.next_reset(t) - t == 24.5 * 3600  # 23.5 h of the date plus the extra hour
    assert quota.pacific_day(t) == "2025-11-02"


def test_pause_message_reads_as_the_issue_asks() -> None:
    t = datetime.fromisoformat("2025-06-12T18:48:00-07:00").timestamp()
    v = quota.Violation("rpd", "x", "gemini-2.5-flash", 250)
    msg = quota.pause_message("gemini-2.5-flash", quota.day_quota_words(v), quota.next_reset(t), t)
    assert msg == ("daily quota of 250 requests for gemini-2.5-flash used; "
                   "resuming at 00:00 PT (in 5 h 12 m)")


# -- the budgets, pure with a virtual clock -------------------------------------
def test_learns_rpm_from_quota_value_then_paces_a_sliding_minute() -> None:
    clock = VClock(1_750_000_000.0)
    b = Budgets(clock=clock, sleep=clock.sleep)
    cls = "generate:gemini-2.5-flash"

    async def go() -> None:
        for _ in range(10):
            await b.acquire(cls)
        assert clock.slept == []  # starts fast: nothing known, nothing pinned
        assert b.learn(cls, quota_err("rpm", 10)) == 0.0
        assert b.limits(cls).rpm == 10
        await b.acquire(cls)
        assert clock.now - 1_750_000_000.0 == pytest.approx(61.0)  # the window freed

    asyncio.run(go())


def test_learns_rpm_by_counting_when_no_value() -> None:
    clock = VClock(1_750_000_000.0)
    b = Budgets(clock=clock, sleep=clock.sleep)

    async def go() -> None:
        for _ in range(7):
            await b.acquire("generate:m")
            clock.now += 1
        b.learn("generate:m", quota_err("rpm", None))
        assert b.limits("generate:m").rpm == 7

    asyncio.run(go())


def test_day_quota_pauses_that_model_only_until_midnight_pacific() -> None:
    t0 = datetime.fromisoformat("2025-06-12T18:48:00-07:00").timestamp()
    clock = VClock(t0)
    seen = []
    b = Budgets(clock=clock, sleep=clock.sleep, on_pause=seen.append)

    async def go() -> None:
        with pytest.raises(QuotaPaused) as e:
            b.learn("generate:a", quota_err("rpd", 250, "a"))  # retryDelay 7s is ignored
        assert e.value.resume_at == quota.next_reset(t0)
        assert "daily quota of 250 requests for a used; resuming at 00:00 PT" in str(e.value)
        with pytest.raises(QuotaPaused):
            await b.acquire("generate:a")  # no request while paused
        await b.acquire("generate:b")  # another model goes on
        await b.acquire("files")  # and file operations
        clock.now = quota.next_reset(t0) + 1
        await b.acquire("generate:a")  # the day turned

    asyncio.run(go())
    assert len(seen) == 1 and seen[0].cls == "generate:a"


def test_pinned_day_quota_stops_before_asking() -> None:
    clock = VClock(1_750_000_000.0)
    b = Budgets(generate=ClassLimits(rpd=3), clock=clock, sleep=clock.sleep)

    async def go() -> None:
        for _ in range(3):
            await b.acquire("generate:m")
        with pytest.raises(QuotaPaused):
            await b.acquire("generate:m")

    asyncio.run(go())


def test_bare_429_backs_off_that_class_exponentially_then_pauses_the_day() -> None:
    clock = VClock(1_750_000_000.0)
    b = Budgets(clock=clock, sleep=clock.sleep)
    bare = ApiError(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota")
    holds = [b.learn("generate:m", bare) for _ in range(4)]
    assert holds == [2.0, 4.0, 8.0, 16.0]

    async def go() -> None:
        await b.acquire("files")  # file operations are not held
        assert clock.slept == []
        await b.acquire("generate:m")
        assert clock.slept == [16.0]

    asyncio.run(go())
    b.done("generate:m")
    assert b.learn("generate:m", bare) == 2.0  # a success resets the strikes
    clock.now += quota.BARE_DAY_AFTER - 1
    b.learn("generate:m", bare)  # refused for half an hour, not yet "the day"
    clock.now += 1
    with pytest.raises(QuotaPaused):
        b.learn("generate:m", bare)


def test_token_window_paces_on_the_last_prompt_size() -> None:
    clock = VClock(1_750_000_000.0)
    b = Budgets(generate=ClassLimits(tpm=1000), clock=clock, sleep=clock.sleep)

    async def go() -> None:
        await b.acquire("generate:m")
        b.done("generate:m", 400)
        await b.acquire("generate:m")
        b.done("generate:m", 400)
        await b.acquire("generate:m")  # 800 + 400 > 1000: wait
        assert clock.slept and clock.slept[0] == pytest.approx(61.0)

    asyncio.run(go())


# -- against the emulator ------------------------------------------------------
def _client(emu: Emulator, budgets: Budgets) -> GeminiClient:
    retry = RetryPolicy(max_attempts=3, sleep=budgets.sleep, random=lambda: 0.5)
    return GeminiClient("k", emu.base_url, retry=retry, budgets=budgets)


async def _uploaded(c: GeminiClient, tmp: Path) -> str:
    p = tmp / "a.png"
    p.write_bytes(png_bytes(16, 16, seed=1))
    f = await c.upload(p, "image/png")
    return f.uri


def test_client_learns_emulator_rpm_and_is_refused_once(tmp_path: Path) -> None:
    emu = Emulator(EmulatorConfig(port=0, quota_rpm=5)).start()
    clock = VClock(emu.clock.now())

    async def sleep(s: float) -> None:  # the emulator's clock moves with ours
        await clock.sleep(s)
        emu.clock.advance(s)

    b = Budgets(clock=clock, sleep=sleep)
    try:
        async def go() -> None:
            async with _client(emu, b) as c:
                uri = await _uploaded(c, tmp_path)
                for _ in range(12):
                    await c.generate("gemini-2.5-flash", file_uri=uri, mime_type="image/png",
                                     prompt="p")
        asyncio.run(go())
        stats = emu.stats()["quota"]
        assert stats["admitted"]["gemini-2.5-flash"] == 12
        assert stats["refused"] == {"gemini-2.5-flash": {"rpm": 1}}
        assert b.limits("generate:gemini-2.5-flash").rpm == 5
    finally:
        emu.stop()


def test_client_day_quota_one_refusal_then_no_calls(tmp_path: Path) -> None:
    emu = Emulator(EmulatorConfig(port=0, quota_rpd=3, quota_shape="novalue")).start()
    clock = VClock(emu.clock.now())
    b = Budgets(clock=clock, sleep=clock.sleep)
    try:
        async def go() -> None:
            async with _client(emu, b) as c:
                uri = await _uploaded(c, tmp_path)
                ok = paused = 0
                for _ in range(8):
                    try:
                        await c.generate("gemini-2.5-flash", file_uri=uri,
                                         mime_type="image/png", prompt="p")
                        ok += 1
                    except QuotaPaused as e:
                        paused += 1
                        assert e.resume_at == quota.next_reset(clock.now)
                assert (ok, paused) == (3, 5)
                await c.list_files()  # file operations go on
        asyncio.run(go())
        assert emu.stats()["quota"]["refused"] == {"gemini-2.5-flash": {"rpd": 1}}
    finally:
        emu.stop()


def test_emulator_bare_429_is_wire_29_shaped(tmp_path: Path) -> None:
    emu = Emulator(EmulatorConfig(port=0, quota_rpm=1, quota_shape="bare")).start()
    import httpx
    try:
        async def go() -> None:
            async with GeminiClient("k", emu.base_url) as c:
                uri = await _uploaded(c, tmp_path)
            body = {"contents": [{"parts": [{"file_data": {"file_uri": uri}}, {"text": "p"}]}]}
            url = f"{emu.base_url}/v1beta/models/gemini-2.5-flash:generateContent"
            async with httpx.AsyncClient() as h:
                r1 = await h.post(url, json=body, headers={"x-goog-api-key": "k"})
                r2 = await h.post(url, json=body, headers={"x-goog-api-key": "k"})
            assert r1.status_code == 200 and r2.status_code == 429
            details = r2.json()["error"]["details"]
            assert [d["@type"].rsplit(".", 1)[1] for d in details] == ["Help"]
        asyncio.run(go())
    finally:
        emu.stop()


# -- config: limits, prices, cost knobs -------------------------------------------
def test_limits_tier_pins_and_knobs_parse() -> None:
    from mediasync.config import ConfigError, Knobs, parse_config

    c = parse_config({
        "limits": {"tier": "free", "requests_per_day": 100, "max_daily_cost": 2,
                   "models": {"gemini-2.5-pro": {"requests_per_minute": 5}}},
        "prices": {"my-model": {"input": 1, "output": 2}},
        "folders": [{"path": "/x", "thinking_budget": 0, "media_resolution": "low",
                     "prompts": [{"kinds": ["image"], "prompt": "p", "sidecar": ".c.md",
                                  "temperature": 0.2, "system_instruction": "terse"}]}],
    })
    g = c.limits.generate
    assert (g.requests_per_minute, g.input_tokens_per_minute, g.requests_per_day) == \
        (10, 250_000, 100)
    assert c.limits.models["gemini-2.5-pro"].requests_per_minute == 5
    assert c.limits.max_daily_cost == 2.0 and c.prices["my-model"].output == 2.0
    k = c.knobs_for(Path("/x/a.png"), c.folders[0].prompts[0])
    assert k == Knobs(0, "low", None, 0.2, "terse")  # thinking_budget = 0 is thinking = 0
    assert k.generation_config("gemini-2.5-flash") == {
        "thinkingConfig": {"thinkingBudget": 0}, "mediaResolution": "MEDIA_RESOLUTION_LOW",
        "temperature": 0.2}
    with pytest.raises(ConfigError, match="folders\\[0\\].media_resolution"):
        parse_config({"folders": [{"path": "/x", "media_resolution": "ultra"}]})
    with pytest.raises(ConfigError, match="limits.tier"):
        parse_config({"limits": {"tier": "gold"}, "folders": [{"path": "/x"}]})


def test_costs_per_model_today_month_total() -> None:
    from mediasync.config import DEFAULT_PRICES, LimitsConfig
    from mediasync.report import costs

    now = datetime.fromisoformat("2025-06-12T12:00:00-07:00").timestamp()
    rows = [("2025-06-12", "gemini-2.5-flash", 2, 1_000_000, 100_000, 300_000, "standard"),
            ("2025-06-01", "gemini-2.5-flash", 1, 1_000_000, 0, 0, "standard"),
            ("2025-05-30", "gemini-2.5-flash-preview-05-20", 1, 1_000_000, 0, 0, "standard")]
    s = costs.summary(rows, DEFAULT_PRICES, now)
    today = s["gemini-2.5-flash"]["today"]
    assert today.cost == pytest.approx(0.30 + 0.4 * 2.50)  # thoughts billed as output
    assert s["gemini-2.5-flash"]["month"].cost == pytest.approx(1.30 + 0.30)
    assert s["gemini-2.5-flash-preview-05-20"]["total"].cost == pytest.approx(0.30)
    spent = costs.today(rows, DEFAULT_PRICES, now)
    assert costs.cap_reached(spent, LimitsConfig(max_daily_cost=1.0)) == "daily cost cap of $1.00"
    assert costs.cap_reached(spent, LimitsConfig(max_daily_cost=2.0)) is None


def test_knobs_reach_the_wire(tmp_path: Path, emu: Emulator) -> None:
    import httpx

    seen: list[dict[str, Any]] = []

    async def hook(request: httpx.Request) -> None:
        if request.url.path.endswith(":generateContent"):
            seen.append(json.loads(request.content))

    async def go() -> None:
        http = httpx.AsyncClient(event_hooks={"request": [hook]})
        async with GeminiClient("k", emu.base_url, http=http) as c:
            uri = await _uploaded(c, tmp_path)
            await c.generate("gemini-2.5-flash", file_uri=uri, mime_type="image/png",
                             prompt="p", generation_config={"thinkingConfig": {
                                 "thinkingBudget": 0}}, system_instruction="terse")
    asyncio.run(go())
    assert seen[0]["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 0}}
    assert seen[0]["systemInstruction"] == {"parts": [{"text": "terse"}]}
