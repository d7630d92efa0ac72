"""The periodic rescan is not cut short while its walks are within their own bounds.

The loop runs on virtual time: a walk of an hour takes no real time at all.
"""

from __future__ import annotations

import asyncio
import selectors
from pathlib import Path

from mediasync.app.daemon import Daemon
from mediasync.config import parse_config
from mediasync.engine.folders import WALK_TIMEOUT


class _VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer instead of waiting for it."""

    def __init__(self) -> None:
        self.now = 0.0
        loop = self

        class Selector(selectors.DefaultSelector):
            def select(self, timeout: float | None = None):  # type: ignore[override]
                ready = super().select(0 if timeout is not None else None)
                if not ready and timeout:
                    loop.now += timeout
                return ready

        super().__init__(Selector())

    def time(self) -> float:
        return self.now


class _SlowScan:
    """The engine's scan as a large share makes it: a walk and a stat of every file."""

    def __init__(self) -> None:
        self.finished = 0

    async def scan(self) -> int:
        await asyncio.sleep(WALK_TIMEOUT * 0.9)  # the walk, within its bound
        await asyncio.sleep(WALK_TIMEOUT * 0.9)  # stat_all, within its bound
        self.finished += 1
        return 0


def test_a_rescan_of_a_large_share_is_not_cancelled(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    config = parse_config({"daemon": {"rescan_every": "10m"},
                           "folders": [{"path": str(tmp_path / "inbox")}]})
    daemon = Daemon(config, None, {})
    daemon.engine = _SlowScan()  # type: ignore[assignment]
    loop = _VirtualLoop()
    try:
        loop.run_until_complete(daemon.rescan())
        assert loop.now >= 2 * WALK_TIMEOUT * 0.9  # the hour went by on the virtual clock
    finally:
        loop.close()
    assert daemon.engine.finished == 1
