"""Models and service tiers over loopback (issue 16): the client against the emulator,
and the engine holding a retired model instead of failing its files."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mediasync.app.apiclient import make_budgets, make_client
from mediasync.emulator import Emulator, EmulatorConfig
from mediasync.engine.dispatch import Engine
from mediasync.gemini import (
    ApiError,
    Budgets,
    ConfigPaused,
    FlexFallback,
    GeminiClient,
    RetryPolicy,
    TransportError,
)
from mediasync.media.samples import png_bytes
from mediasync.report import status
from mediasync.store import Meta, Store
from tests.helpers import engine_setup

FAST = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(port=0)) as e:
        yield e


async def _uri(client: GeminiClient, tmp_path: Path, seed: int = 1) -> str:
    p = tmp_path / f"s{seed}.png"
    p.write_bytes(png_bytes(32, 32, seed=seed))
    f = await client.upload(p, "image/png")
    assert f.uri
    return f.uri


def _gens(emu: Emulator, model: str) -> int:
    return emu.stats()["generate_by_model"].get(model, 0)


# -- the catalogue ---------------------------------------------------------------------
def test_models_list_reads_every_page_and_get_names_a_missing_model(emu: Emulator) -> None:
    emu.models.retire("gemini-2.5-flash")

    async def go() -> None:
        async with GeminiClient("k", emu.base_url, retry=FAST) as c:
            from mediasync.gemini import catalog

            every = await catalog.list_models(c.transport, page_size=4)  # several pages
            assert len({m.id for m in every}) == len(every) == len(emu.models.models) - 1
            assert "gemini-2.5-flash" not in {m.id for m in every}
            got = await c.get_model("gemini-3.5-flash-lite")
            assert got.generates and got.thinking is True
            with pytest.raises(ApiError) as e:
                await c.get_model("models/gemini-2.5-flash")
            assert e.value.model_missing == "gemini-2.5-flash"

    asyncio.run(go())
    assert emu.stats()["requests"]["models.list"] >= 4


# -- a retired model: held, not failed -----------------------------------------------------
def test_a_404_naming_the_model_holds_it_and_no_later_call_goes_out(tmp_path, emu) -> None:
    emu.models.retire("gemini-2.5-flash")
    budgets = Budgets()

    async def go() -> None:
        async with GeminiClient("k", emu.base_url, budgets=budgets, retry=FAST) as c:
            uri = await _uri(c, tmp_path)
            for _ in range(3):
                with pytest.raises(ConfigPaused) as e:
                    await c.generate("gemini-2.5-flash", file_uri=uri, mime_type="image/png",
                                     prompt="p")
                assert e.value.model_missing == "gemini-2.5-flash"
            # other models go on
            await c.generate("gemini-3.5-flash-lite", file_uri=uri, mime_type="image/png",
                             prompt="p")

    asyncio.run(go())
    assert _gens(emu, "gemini-2.5-flash") == 1  # one call learned it; none after
    (held,) = budgets.held.values()
    assert held.message.startswith("model gemini-2.5-flash is not available: set api.model")
    assert "404 NOT_FOUND" in held.why


def test_a_rerouted_model_is_billed_as_the_model_that_served(tmp_path, emu) -> None:
    emu.models.route("gemini-2.5-flash", "gemini-3.5-flash-lite")
    seen: list[tuple[str, str]] = []

    async def go() -> None:
        async with GeminiClient("k", emu.base_url, retry=FAST) as c:
            c.on_usage = lambda model, usage, tier: seen.append((model, tier))
            uri = await _uri(c, tmp_path)
            g = await c.generate("gemini-2.5-flash", file_uri=uri, mime_type="image/png",
                                 prompt="p")
            assert g.model_version == "gemini-3.5-flash-lite"

    asyncio.run(go())
    assert seen == [("gemini-3.5-flash-lite", "standard")]


# -- tiers -----------------------------------------------------------------------------------
def test_flex_is_asked_top_level_and_the_served_tier_comes_back(tmp_path, emu) -> None:
    seen: list[tuple[str, str]] = []

    async def go() -> None:
        async with GeminiClient("k", emu.base_url, retry=FAST) as c:
            c.on_usage = lambda model, usage, tier: seen.append((model, tier))
            uri = await _uri(c, tmp_path)
            g = await c.generate("gemini-3.5-flash-lite", file_uri=uri, mime_type="image/png",
                                 prompt="p", service_tier="flex")
            assert g.service_tier == "flex" and g.raw["usageMetadata"]["serviceTier"] == "flex"

    asyncio.run(go())
    assert seen == [("gemini-3.5-flash-lite", "flex")]
    assert emu.stats()["tiers"] == {"flex": 1}


def test_flex_refused_is_transient_and_falls_back_after_n_when_allowed(tmp_path, emu) -> None:
    emu.state.flex_capacity = 0  # every Flex call refused for load
    tiers: list[str] = []

    async def go() -> None:
        flex = FlexFallback(allowed=True, after=2)
        async with GeminiClient("k", emu.base_url, retry=FAST, flex=flex) as c:
            c.on_usage = lambda model, usage, tier: tiers.append(tier)
            uri = await _uri(c, tmp_path)
            kw: dict[str, Any] = dict(file_uri=uri, mime_type="image/png", prompt="p",
                                      service_tier="flex")
            with pytest.raises(ApiError) as e:
                await c.generate("gemini-3.8-flash", **kw)
            assert e.value.code == 503 and e.value.retryable  # transient: tried later
            assert emu.stats()["tiers"]["flex_refused"] == 1  # no retry within the call
            g = await c.generate("gemini-3.8-flash", **kw)  # the 2nd refusal: standard now
            assert g.service_tier == "standard"
            await c.generate("gemini-3.8-flash", **kw)  # standard for a while, no Flex try
        assert flex.fallbacks == 1

    asyncio.run(go())
    assert emu.stats()["tiers"] == {"flex_refused": 2, "standard": 2}
    assert tiers == ["standard", "standard"]


def test_without_the_fall_back_flex_refusals_stay_transient(tmp_path, emu) -> None:
    emu.state.flex_capacity = 0

    async def go() -> None:
        async with GeminiClient("k", emu.base_url, retry=FAST) as c:
            uri = await _uri(c, tmp_path)
            for _ in range(4):
                with pytest.raises(ApiError) as e:
                    await c.generate("gemini-3.8-flash", file_uri=uri, mime_type="image/png",
                                     prompt="p", service_tier="flex")
                assert e.value.retryable

    asyncio.run(go())
    assert emu.stats()["tiers"] == {"flex_refused": 4}


def test_a_flex_call_gets_its_own_time_out(tmp_path, emu) -> None:
    emu.state.flex_latency = 1.5

    async def go() -> None:
        async with GeminiClient("k", emu.base_url, retry=FAST, timeout=60.0,
                                flex_timeout=0.3) as c:
            uri = await _uri(c, tmp_path)
            with pytest.raises(TransportError) as e:
                await c.generate("gemini-3.8-flash", file_uri=uri, mime_type="image/png",
                                 prompt="p", service_tier="flex")
            assert e.value.status == "DEADLINE_EXCEEDED"
            # a standard call of the same client is not cut at the Flex time-out
            await c.generate("gemini-3.8-flash", file_uri=uri, mime_type="image/png",
                             prompt="p")

    asyncio.run(go())


def test_priority_refused_for_the_keys_tier_is_held_as_config(tmp_path, emu) -> None:
    budgets = Budgets()

    async def go() -> None:
        async with GeminiClient("k", emu.base_url, budgets=budgets, retry=FAST) as c:
            uri = await _uri(c, tmp_path)
            for _ in range(2):
                with pytest.raises(ConfigPaused) as e:
                    await c.generate("gemini-3.8-flash", file_uri=uri, mime_type="image/png",
                                     prompt="p", service_tier="priority")
                assert e.value.tier_refused
            await c.generate("gemini-3.8-flash", file_uri=uri, mime_type="image/png",
                             prompt="p", service_tier="flex")  # other tiers go on

    asyncio.run(go())
    assert _gens(emu, "gemini-3.8-flash") == 2  # one priority call, then none
    (held,) = budgets.held.values()
    assert held.key == "tier:priority" and "api.service_tier" in held.message


# -- the engine ------------------------------------------------------------------------------
def _setup(tmp_path: Path, emu: Emulator, files: int, **api: Any) -> tuple[Any, Store]:
    config, store = engine_setup(tmp_path, emu.base_url)
    config = dataclasses.replace(config, api=dataclasses.replace(config.api, **api),
                                 daemon=dataclasses.replace(config.daemon, max_generations=4))
    for i in range(files):
        (tmp_path / "inbox" / f"p{i}.png").write_bytes(png_bytes(16, 16, seed=100 + i))
    return config, store


async def _pass(engine: Engine) -> None:
    await asyncio.gather(engine.refresh(), engine.scan())
    await engine.run(until_idle=True)


def _one_pass(config, store) -> None:  # noqa: ANN001
    """One pass of a fresh engine and client, as `sync` makes it."""

    async def go() -> None:
        client = make_client(config, {"GEMINI_API_KEY": "k"}, store=store)
        await _pass(Engine(config, store, client, once=True))
        await client.aclose()

    asyncio.run(go())


def test_engine_holds_a_retired_model_one_wave_at_most_then_a_fix_resumes(tmp_path, emu):
    config, store = _setup(tmp_path, emu, 12, model="gemini-2.5-flash")

    async def go() -> None:
        client = make_client(config, {"GEMINI_API_KEY": "k"}, store=store)
        engine = Engine(config, store, client, once=True)
        await engine.scan()  # no start-up look: the model was fine when the daemon began
        emu.models.retire("gemini-2.5-flash")
        await engine.run(until_idle=True)
        sent = _gens(emu, "gemini-2.5-flash")
        assert 1 <= sent <= config.daemon.max_generations  # one wave learned it
        assert store.all_outputs() == []  # nothing recorded against any file
        reports = status.build(store, config)
        assert {r.state for r in reports} == {"waiting"}
        assert all("waiting for model gemini-2.5-flash, which the service does not serve"
                   in (r.message or "") for r in reports)
        assert list(status.held(store, config)) == ["model:gemini-2.5-flash"]

        # The same bad model after a restart: the start-up look holds it, no wave at all.
        await client.aclose()
        client = make_client(config, {"GEMINI_API_KEY": "k"}, store=store)
        engine = Engine(config, store, client, once=True)
        await _pass(engine)
        assert _gens(emu, "gemini-2.5-flash") == sent

        # A reload with a good model: its look lifts the hold, every output is written.
        good = dataclasses.replace(config, api=dataclasses.replace(config.api,
                                                                   model="gemini-3.8-flash"))
        budgets = make_budgets(good, store)
        engine.reconfigure(good, make_client(good, {"GEMINI_API_KEY": "k"}, store=store,
                                             budgets=budgets))
        await _pass(engine)
        assert status.held(store, good) == {} and store.read(Meta.HELD) == []
        assert {r.state for r in status.build(store, good)} == {"synced"}
        rows = store.all_outputs()
        assert len(rows) == 12 and {r.model_version for r in rows} == {"gemini-3.8-flash"}
        await engine.client.aclose()
        await client.aclose()

    asyncio.run(go())
    store.close()


def test_the_model_coming_back_lifts_the_hold_at_the_next_look(tmp_path, emu):
    config, store = _setup(tmp_path, emu, 3, model="gemini-2.5-flash")
    emu.models.retire("gemini-2.5-flash")

    async def go() -> None:
        client = make_client(config, {"GEMINI_API_KEY": "k"}, store=store)
        engine = Engine(config, store, client, once=True)
        await _pass(engine)
        assert _gens(emu, "gemini-2.5-flash") == 0  # held by the start-up look
        emu.models.restore("gemini-2.5-flash")
        await _pass(engine)  # the listing's look finds it again
        assert {r.state for r in status.build(store, config)} == {"synced"}
        await client.aclose()

    asyncio.run(go())
    store.close()


def test_a_model_without_generate_content_is_held_too(tmp_path, emu):
    config, store = _setup(tmp_path, emu, 2, model="gemini-embedding-001")

    _one_pass(config, store)
    (why,) = [d["why"] for d in store.read(Meta.HELD)]
    assert "does not support generateContent (it supports embedContent" in why
    assert emu.stats()["generate_by_model"] == {}
    store.close()


def test_a_model_that_refuses_a_part_stays_that_files_verdict(tmp_path, emu):
    config, store = _setup(tmp_path, emu, 1, model="gemini-3.5-transcribe")

    _one_pass(config, store)
    (report,) = status.build(store, config)
    assert report.state == "failed" and "does not support image input" in report.message
    assert store.read(Meta.HELD) == []  # the model is fine: the file is not for it
    store.close()


def test_outputs_record_the_model_and_tier_that_served(tmp_path, emu):
    config, store = _setup(tmp_path, emu, 2, model="gemini-2.5-flash", service_tier="flex")
    emu.models.route("gemini-2.5-flash", "gemini-3.5-flash-lite")

    _one_pass(config, store)
    rows = store.all_outputs()
    assert {(r.model, r.model_version, r.service_tier) for r in rows} == {
        ("gemini-2.5-flash", "gemini-3.5-flash-lite", "flex")}
    # the ledger prices the model and tier that served
    assert {(m, t) for _, m, *_, t in store.usage()} == {("gemini-3.5-flash-lite", "flex")}
    sidecars = [s for r in status.build(store, config) for s in r.sidecars]
    assert {(s.model_version, s.service_tier) for s in sidecars} == {
        ("gemini-3.5-flash-lite", "flex")}
    store.close()
