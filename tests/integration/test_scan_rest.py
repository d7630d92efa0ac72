"""A scan queues only the files the reconciler has a step for (rules/rest.py): the
files it leaves out are ones the reconciler, run on them, leaves as they are (no
row written, no request, no file touched), and every file with a step is queued."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from mediasync.config import parse_config
from mediasync.emulator import Emulator
from mediasync.engine.dispatch import Engine
from mediasync.gemini import GeminiClient
from mediasync.media.samples import png_bytes
from mediasync.store import Store
from tests.helpers import Clock, advance

HOUR = 3600.0
OLD = time.time() - 2 * HOUR  # an mtime long past the settle time


def _config(tmp_path: Path, emu: Emulator, prompt: str = "Describe it.") -> object:
    return parse_config({
        "api": {"base_url": emu.base_url},
        "daemon": {"state_dir": str(tmp_path / "state"), "settle": "2s",
                   "requests_per_minute": 6000},
        "folders": [
            {"path": str(tmp_path / "kept"), "prompts": [
                {"kinds": ["image"], "prompt": prompt, "sidecar": ".caption.md"}]},
            {"path": str(tmp_path / "lazy"), "keep_alive": "on_use"},
        ],
    })


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (OLD, OLD))
    return path


async def _synced(tmp_path: Path, emu: Emulator, clock: Clock) -> tuple[Engine, Store]:
    """Synced files of every plain kind: captioned, an edited caption kept, an empty
    file (a verdict), one in a folder whose copies lapse."""
    kept = tmp_path / "kept"
    for i, name in enumerate(["synced", "nocap", "changed", "touched", "edited"]):
        _write(kept / "sub" / f"{name}.png", png_bytes(8, 8, seed=i))
    _write(kept / "empty.png", b"")
    _write(tmp_path / "lazy" / "onuse.png", png_bytes(8, 8, seed=9))
    store = Store(tmp_path / "state" / "state.db")
    engine = Engine(_config(tmp_path, emu), store, GeminiClient("k", emu.base_url), once=True,
                    clock=clock)
    for _ in range(2):  # the second records the edited caption as the owner's
        await engine.refresh()
        await engine.scan()
        await engine.run(until_idle=True)
        (kept / "sub" / "edited.png.caption.md").write_text("my own words\n")
    return engine, store


async def _queued_by_scan(engine: Engine) -> tuple[set[str], int]:
    """(paths the scan queued, files it found), recorded as the scan hands them over."""
    queued: set[str] = set()
    mark = engine.mark_dirty

    def record(path: str, *, event: bool = True) -> None:
        queued.add(path)
        mark(path, event=event)

    engine.mark_dirty = record  # type: ignore[method-assign]
    try:
        found = await engine.scan()
    finally:
        del engine.mark_dirty
    return queued, found


def _everything(tmp_path: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p): (p.stat().st_mtime_ns, p.read_bytes())
            for p in tmp_path.rglob("*") if p.is_file() and "state" not in p.parts}


def _kept(tmp_path: Path, *names: str) -> set[str]:
    return {str(tmp_path / "kept" / "sub" / f"{n}.png") for n in names}


ALL_KEPT = ("synced", "nocap", "changed", "touched", "edited")


def test_a_file_at_rest_is_not_queued_and_the_reconciler_would_leave_it(tmp_path, emu):
    async def scenario() -> None:
        engine, store = await _synced(tmp_path, emu, Clock())
        kept = tmp_path / "kept" / "sub"
        (kept / "nocap.png.caption.md").unlink()  # deleted: generated again
        _write(kept / "changed.png", png_bytes(9, 9, seed=99))  # other bytes
        os.utime(kept / "touched.png", (OLD - 60, OLD - 60))  # another mtime: identified again

        queued, found = await _queued_by_scan(engine)
        assert found == 7
        assert queued == _kept(tmp_path, "nocap", "changed", "touched")

        # The reconciler, run on every file the scan left out, does nothing at all.
        await engine.run(until_idle=True)  # the queued ones first
        resting = {str(p) for p in tmp_path.rglob("*.png")} - queued
        assert len(resting) == 4  # synced, edited (kept), empty (a verdict), onuse
        files, changes = _everything(tmp_path), store.changes
        requests = emu.stats()["requests"]
        for path in sorted(resting):
            engine.mark_dirty(path, event=False)
        await engine.run(until_idle=True)
        assert store.changes == changes
        after = emu.stats()["requests"]
        assert {k: v for k, v in after.items() if k != "control"} == {
            k: v for k, v in requests.items() if k != "control"}
        assert _everything(tmp_path) == files

        # and the queued ones were brought to rest
        assert (await _queued_by_scan(engine))[0] == set()
        await engine.client.aclose()
        store.close()

    asyncio.run(scenario())


def test_a_copy_due_for_renewal_is_not_at_rest(tmp_path, emu):
    async def scenario() -> None:
        clock = Clock()
        engine, store = await _synced(tmp_path, emu, clock)
        advance(clock, emu, 43 * HOUR)  # inside renew_before (6 h) of the 48 h expiry
        # every kept-alive copy has a step; a lapsing folder's file and a verdict do not
        assert (await _queued_by_scan(engine))[0] == _kept(tmp_path, *ALL_KEPT)
        await engine.client.aclose()
        store.close()

    asyncio.run(scenario())


def test_a_changed_prompt_or_an_event_leaves_nothing_at_rest(tmp_path, emu):
    async def scenario() -> None:
        engine, store = await _synced(tmp_path, emu, Clock())
        synced = tmp_path / "kept" / "sub" / "synced.png"
        engine.mark_dirty(str(synced))  # a watcher event: it must settle first
        assert (await _queued_by_scan(engine))[0] == {str(synced)}

        engine.reconfigure(_config(tmp_path, emu, prompt="Describe it in French."))
        assert (await _queued_by_scan(engine))[0] == _kept(tmp_path, *ALL_KEPT)
        await engine.client.aclose()
        store.close()

    asyncio.run(scenario())
