"""A renamed file takes its sidecars along; one that cannot move stays where it is,
and the rest are still recorded as ours under the new name."""

from __future__ import annotations

import asyncio
import logging
import os

from mediasync.config import parse_config
from mediasync.engine.dispatch import Engine
from mediasync.gemini import GeminiClient
from mediasync.media.samples import png_bytes
from mediasync.store import Store


def test_a_sidecar_that_cannot_move_does_not_strand_the_others(emu, tmp_path, caplog):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = parse_config({
        "api": {"base_url": emu.base_url},
        "daemon": {"state_dir": str(tmp_path / "state"), "settle": "0s",
                   "requests_per_minute": 6000},
        "folders": [{"path": str(inbox), "prompts": [
            {"kinds": ["image"], "prompt": "short", "sidecar": ".t.md"},
            {"kinds": ["image"], "prompt": "long", "sidecar": ".caption.md"},
        ]}],
    })
    old = inbox / "a.png"
    old.write_bytes(png_bytes(seed=81))
    # 250 bytes: its ".t.md" sidecar fits a name (255), its ".caption.md" one does
    # not (ENAMETOOLONG, an OSError as EXDEV across a sub-mount is).
    new = inbox / ("x" * 246 + ".png")

    async def main() -> None:
        store = Store(tmp_path / "state" / "state.db")
        client = GeminiClient("k", emu.base_url)
        try:
            engine = Engine(config, store, client, once=True)
            await engine.scan()
            await engine.run(until_idle=True)
            assert set(store.get_outputs(str(old))) == {".t.md", ".caption.md"}
            os.rename(old, new)
            engine.mark_dirty(str(old))
            engine.mark_dirty(str(new))
            await engine.run(until_idle=True)
            await engine.sweep()
            assert store.get_path(str(old)) is None  # the rename is complete
            moved = store.get_outputs(str(new))[".t.md"]
            assert moved.sidecar == f"{new}.t.md"  # recorded as ours, not the owner's
            assert store.get_outputs(str(old)) == {}
        finally:
            await client.aclose()
            store.close()

    with caplog.at_level(logging.INFO, logger="mediasync"):
        asyncio.run(main())
    assert (inbox / f"{new.name}.t.md").exists()
    assert (inbox / "a.png.caption.md").exists()  # could not move: kept where it was
    assert not (inbox / "a.png.t.md").exists()
    assert "could not move" in caplog.text
    # (The new name's own caption cannot be written either: produce's concern, not this.)
    assert "in adopt_outputs" not in caplog.text
