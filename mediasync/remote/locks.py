"""One upload, poll or renewal of a content at a time: a lock per content, kept only
while someone holds or awaits it (a daemon sees every content of a library over
months)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class ContentLocks:
    def __init__(self) -> None:
        self._locks: dict[str, _Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, sha: str) -> AsyncIterator[None]:
        """Hold the content's lock; its entry is dropped when nobody holds or awaits it."""
        entry = self._locks.get(sha)
        if entry is None:
            entry = self._locks[sha] = _Lock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0 and self._locks.get(sha) is entry:
                del self._locks[sha]

    def busy(self, sha: str) -> bool:
        """Someone holds the content's lock now."""
        entry = self._locks.get(sha)
        return entry is not None and entry.lock.locked()

    def __len__(self) -> int:
        """Contents with a lock entry (held or awaited)."""
        return len(self._locks)


class _Lock:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # holders and waiters
