"""Not a benchmark: makes docs/status-page.png, the README's picture of the status page.

    .venv/bin/python bench/screenshot.py [--width 1000 --height 1000] [--out PNG]

A store written directly (two folders, a few failed and waiting files, today's
usage, a quota pause), served by the real endpoint (app/observe.py) on a free
loopback port, photographed by headless Chromium (Debian's `chromium`).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT

sys.path.insert(0, str(ROOT))

from mediasync.app.observe import Observer  # noqa: E402
from mediasync.config import parse_config  # noqa: E402
from mediasync.gemini.quota import next_reset, pacific_day  # noqa: E402
from mediasync.store import Meta, OutputRow, Store  # noqa: E402
from tests.helpers import fill_store  # noqa: E402


def library(tmp: Path) -> tuple[object, Store]:
    photos, memos = "/srv/media/Photos", "/srv/media/Voice memos"
    config = parse_config({"daemon": {"http": "127.0.0.1:0"},
                           "limits": {"max_daily_cost": 2.0},
                           "folders": [{"path": photos}, {"path": memos}]})
    store = Store(tmp / "state.db")
    now = time.time()
    names = ["2026/IMG_2041.HEIC", "2026/IMG_2107 (1).jpg", "scans/receipt-03.png",
             "2026/IMG_2230.jpg", "2026/IMG_2231.jpg", "2026/IMG_2299.jpg"]
    fill_store(store, config, 1248, failed=2, waiting=3, names=names, now=now)
    fill_store(store, parse_config({"folders": [{"path": memos}]}), 57, names=["call.m4a"],
               now=now)
    # one blocked answer: a file that failed for good with the service's reason
    row = store.get_outputs(f"{photos}/2026/IMG_2299.jpg")[".caption.md"]
    store.put_output(OutputRow(**{**row.__dict__, "outcome": "blocked", "written_hash": None,
                                  "message": "the service gave no answer (SAFETY)"}))
    store.write(Meta.UNAVAILABLE, {})
    day = pacific_day(now)
    for _ in range(340):
        store.add_usage(day, "gemini-2.5-flash", 560, 24, 410)
    store.write(Meta.QUOTA_PAUSES, [{"class": "generate:gemini-2.5-pro",
                                     "resume_at": next_reset(now),
                                     "what": "daily quota of 100 requests",
                                     "model": "gemini-2.5-pro"}])
    return config, store


async def serve_and_shoot(config: object, store: Store, out: Path, width: int, height: int,
                          tmp: Path) -> None:
    obs = Observer(config, store, {})  # type: ignore[arg-type]
    await obs.start()
    try:
        await obs.refresh()
        assert obs.endpoint is not None
        url = f"http://{obs.endpoint.address}/"
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise SystemExit("no chromium: apt-get install chromium")
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp / 'browser'}",
               f"--window-size={width},{height}", f"--screenshot={out}", url]
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL)
        await asyncio.wait_for(proc.wait(), 120)
    finally:
        await obs.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--height", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "status-page.png")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mediasync-shot-") as tmp:
        config, store = library(Path(tmp))
        asyncio.run(serve_and_shoot(config, store, args.out.resolve(), args.width,
                                    args.height, Path(tmp)))
        store.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
