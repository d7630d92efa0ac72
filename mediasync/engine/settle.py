"""When a file counts as still: unchanged, and no watcher event, for `settle` seconds.

Half-copied files must not be uploaded; the rule itself is pure (steps.settle_wait),
this keeps what it needs between looks at a path.
"""

from __future__ import annotations

from collections.abc import Callable

from mediasync.rules import steps
from mediasync.rules.rows import LocalFacts


class Settle:
    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._last_event: dict[str, float] = {}
        self._previous: dict[str, LocalFacts] = {}

    def event(self, path: str) -> None:
        """The watcher saw the path change."""
        self._last_event[path] = self._monotonic()

    def wait(self, path: str, facts: LocalFacts, now_wall: float, settle: float) -> float:
        """Seconds to wait before the file may be taken; 0 when it may be taken now."""
        wait = steps.settle_wait(facts, self._previous.get(path), self._last_event.get(path),
                                now_wall, self._monotonic(), settle)
        if wait > 0:
            self._previous[path] = facts
        else:
            self.forget(path)
        return wait

    def quiet(self, path: str) -> bool:
        """No watcher event and no earlier look of the path is being waited on."""
        return path not in self._previous and path not in self._last_event

    def forget(self, path: str) -> None:
        self._previous.pop(path, None)
        self._last_event.pop(path, None)
