"""The engine in-process with an injected clock: renewal and expiry without waiting."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mediasync.emulator import Emulator
from mediasync.engine.dispatch import Engine
from mediasync.gemini import GeminiClient
from mediasync.media.samples import png_bytes
from mediasync.store import Store
from tests.helpers import Clock, advance, engine_setup

HOUR = 3600.0




def _engine(tmp_path: Path, emu: Emulator, clock: Clock) -> tuple[Engine, Store]:
    config, store = engine_setup(tmp_path, emu.base_url)
    client = GeminiClient("k", emu.base_url)
    return Engine(config, store, client, once=True, clock=clock), store


async def _pass(engine: Engine) -> None:
    await engine.refresh()
    await engine.scan()
    await engine.run(until_idle=True)
    await engine.sweep()


def test_renewal_before_expiry_and_reupload_after_expiry(tmp_path, emu):
    clock = Clock()
    engine, store = _engine(tmp_path, emu, clock)
    (tmp_path / "inbox" / "photo.png").write_bytes(png_bytes(seed=41))
    sidecar = tmp_path / "inbox" / "photo.png.caption.md"

    async def scenario() -> None:
        await _pass(engine)
        first = store.all_contents()[0].remote_name
        written = sidecar.read_text()
        gens = emu.stats()["requests"]["generate"]

        # 43 h later: inside renew_before (6 h) of the 48 h expiry.
        advance(clock, emu, 43 * HOUR)
        await _pass(engine)
        await engine.refresh()  # deletes the replaced copy
        renewed = store.all_contents()[0]
        assert renewed.remote_name != first
        assert renewed.expires_at > clock() + 47 * HOUR
        assert [f["name"] for f in emu.list_files()] == [renewed.remote_name]
        assert emu.stats()["requests"]["generate"] == gens  # a renewal never reruns prompts
        assert sidecar.read_text() == written

        # The daemon was down past expiry: the copy vanished; upload it again.
        advance(clock, emu, 49 * HOUR)
        await _pass(engine)
        again = store.all_contents()[0]
        assert again.remote_name not in (first, renewed.remote_name)
        assert len(emu.list_files()) == 1
        assert emu.stats()["requests"]["generate"] == gens
        await engine.client.aclose()

    asyncio.run(scenario())
    store.close()


def test_file_vanishing_between_scan_and_upload_is_no_error(tmp_path, caplog, emu):
    clock = Clock()
    engine, store = _engine(tmp_path, emu, clock)
    keep = tmp_path / "inbox" / "keep.png"
    gone = tmp_path / "inbox" / "gone.png"
    keep.write_bytes(png_bytes(seed=42))
    gone.write_bytes(png_bytes(seed=43))

    async def scenario() -> None:
        await engine.scan()
        gone.unlink()  # after the scan saw it, before anything read it
        await engine.run(until_idle=True)
        await engine.sweep()
        await engine.client.aclose()

    asyncio.run(scenario())
    assert (tmp_path / "inbox" / "keep.png.caption.md").exists()
    assert not (tmp_path / "inbox" / "gone.png.caption.md").exists()
    assert [r.path for r in store.all_paths()] == [str(keep)]
    assert emu.stats()["uploads_started"] == 1
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    store.close()
