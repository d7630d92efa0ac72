"""A watched folder that cannot be looked at is unavailable, never a crash nor deleted files."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from mediasync.config import parse_config
from mediasync.engine.dispatch import Engine
from mediasync.gemini import GeminiClient
from mediasync.media.samples import png_bytes
from mediasync.store import Meta, Store


def test_a_folder_whose_parent_vanished_is_unavailable_and_the_others_are_scanned(emu, tmp_path):
    # udisks removes /media/<user>/LABEL on unmount; the configured folder is LABEL/DCIM.
    card = tmp_path / "media" / "LABEL" / "DCIM"
    other = tmp_path / "other"
    card.mkdir(parents=True)
    other.mkdir()
    (card / "a.png").write_bytes(png_bytes(seed=61))
    (other / "b.png").write_bytes(png_bytes(seed=62))
    config = parse_config({
        "api": {"base_url": emu.base_url},
        "daemon": {"state_dir": str(tmp_path / "state"), "settle": "0s",
                   "requests_per_minute": 6000},
        "folders": [{"path": str(card)}, {"path": str(other)}],
    })

    async def main() -> tuple[int, dict[str, str], float | None]:
        store = Store(tmp_path / "state" / "state.db")
        client = GeminiClient("k", emu.base_url)
        try:
            engine = Engine(config, store, client, once=True)
            assert await engine.scan() == 2
            await engine.run(until_idle=True)
            shutil.rmtree(tmp_path / "media" / "LABEL")
            found = await engine.scan()
            await engine.run(until_idle=True)
            await engine.sweep()
            row = store.get_path(str(card / "a.png"))
            assert row is not None
            return found, store.read(Meta.UNAVAILABLE), row.gone_at
        finally:
            await client.aclose()
            store.close()

    found, unavailable, gone_at = asyncio.run(main())
    assert found == 1  # the other folder was still walked
    assert "No such file or directory" in unavailable[str(card)]
    assert gone_at is None, "a file on the unmounted card was marked gone"
    assert emu.stats()["live_files"] == 2
    assert Path(other / "b.png.caption.md").exists()
