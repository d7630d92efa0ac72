"""keep_alive = "on_use": an idle library costs no renewals; a copy is made when a
prompt needs it. A folder that keeps its copies alive is renewed as before."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from mediasync.config import parse_config
from mediasync.emulator import Emulator
from mediasync.engine.dispatch import Engine
from mediasync.gemini import GeminiClient
from mediasync.media.samples import png_bytes
from mediasync.report import status
from mediasync.store import Store
from tests.helpers import Clock, advance

HOUR = 3600.0


def _setup(tmp_path: Path, emu: Emulator, clock: Clock) -> tuple[Engine, Store]:
    lazy, kept = tmp_path / "lazy", tmp_path / "kept"
    lazy.mkdir()
    kept.mkdir()
    config = parse_config({
        "api": {"base_url": emu.base_url},
        "daemon": {"state_dir": str(tmp_path / "state"), "settle": "0s",
                   "keep_alive": "on_use"},
        "folders": [{"path": str(lazy)}, {"path": str(kept), "keep_alive": "always"}],
    })
    store = Store(tmp_path / "state" / "state.db")
    return Engine(config, store, GeminiClient("k", emu.base_url), once=True, clock=clock), store


async def _pass(engine: Engine) -> None:
    await engine.refresh()
    await engine.scan()
    engine.mirror.renewals.due()
    await engine.mirror.renewals.wait()
    await engine.run(until_idle=True)


def _uploads(emu: Emulator) -> int:
    return emu.stats()["requests"].get("start", 0)


def _states(store: Store, engine: Engine, now: float) -> dict[str, tuple[str, str | None]]:
    return {Path(r.path).parent.name: (r.state, r.note)
            for r in status.build(store, engine.config, now)}


def test_on_use_lets_copies_lapse_and_uploads_again_when_a_prompt_needs_one(tmp_path, emu):
    clock = Clock()
    engine, store = _setup(tmp_path, emu, clock)
    lazy = tmp_path / "lazy" / "a.png"
    lazy.write_bytes(png_bytes(seed=1))
    (tmp_path / "kept" / "b.png").write_bytes(png_bytes(seed=2))

    async def scenario() -> None:
        await _pass(engine)
        assert _uploads(emu) == 2
        assert Path(f"{lazy}.caption.md").exists()
        gens = emu.stats()["requests"]["generate"]

        # In the renewal window: only the folder that keeps copies alive renews.
        advance(clock, emu, 43 * HOUR)
        await _pass(engine)
        assert _uploads(emu) == 3
        # Past the lazy copy's expiry: nothing is uploaded, and both are synced.
        advance(clock, emu, 6 * HOUR)
        await _pass(engine)
        assert _uploads(emu) == 3
        assert emu.stats()["requests"]["generate"] == gens
        states = _states(store, engine, clock())
        assert states["lazy"][0] == "synced" and "on_use" in (states["lazy"][1] or "")
        assert states["kept"] == ("synced", None)
        assert engine.mirror.renewals.next_at() is not None  # the kept copy's next one

        # A new prompt needs the lazy file's copy: one upload, one generation each.
        folders = tuple(
            dataclasses.replace(f, prompts=tuple(
                dataclasses.replace(p, prompt=p.prompt + " Be brief.") for p in f.prompts))
            for f in engine.config.folders)
        engine.reconfigure(dataclasses.replace(engine.config, folders=folders))
        await _pass(engine)
        assert _uploads(emu) == 4  # the lazy copy only: the kept one still serves
        assert emu.stats()["requests"]["generate"] == gens + 2
        assert _states(store, engine, clock())["lazy"][0] == "synced"
        await engine.client.aclose()

    asyncio.run(scenario())
    store.close()
