"""A wall clock that steps backwards (NTP correcting a clock that ran ahead, a board
without a real-time clock, an owner's `date -s`) must not delay retries.

Retry times are stored as wall-clock times (they must survive a restart), and a
path due again is judged against the wall clock. Within a run the monotonic clock
tells a step from time passing: when wall minus monotonic falls by more than
``STEP``, every recorded retry time (and the time paths were seen gone) moves back
by the step, so each waits what it was meant to. A step forward needs nothing:
retries then come early, never late.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mediasync.store import Store

log = logging.getLogger("mediasync")

STEP = 2.0  # seconds: a smaller change is drift or slewing, not a step


class WallJumps:
    def __init__(self, store: Store, clock: Callable[[], float],
                 monotonic: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock
        self._monotonic = monotonic
        self._offset = clock() - monotonic()
        self._untaken = 0.0  # steps found since ``taken`` was last asked

    def check(self) -> float:
        """Seconds the wall clock stepped back since the last look (0.0: none); the
        recorded times have been moved back by as much."""
        offset = self._clock() - self._monotonic()
        back, self._offset = self._offset - offset, offset
        if back <= STEP:
            return 0.0
        self._store.shift_times(-back)
        self._untaken += back
        log.warning("the wall clock went back %.0f s; retry times move back with it", back)
        return back

    def taken(self) -> float:
        """Seconds the wall clock stepped back since this was last asked, whichever
        look found the step (a path's reconcile looks too, and must not keep the daemon
        from planning its jobs again)."""
        self.check()
        back, self._untaken = self._untaken, 0.0
        return back
