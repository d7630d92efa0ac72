"""One path, one step: compare what should be (config + the file on disk) with
what is (the store + the remote copy) and take the next step — settle, identify,
mirror, outputs (docs/architecture.md, "From an event to a sidecar").
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path, PurePath

from mediasync.config import FolderConfig
from mediasync.engine.context import UNAVAILABLE_RETRY, Context, Requeue
from mediasync.engine.halt import Halt
from mediasync.gemini import ApiError
from mediasync.local.candidates import is_candidate
from mediasync.local.folderio import FolderUnavailable
from mediasync.local.scan import LinkSkipped, NotRegular, local_facts
from mediasync.rules import desired
from mediasync.rules.failures import ContentUnavailable
from mediasync.rules.rows import ContentRow, Desired, LocalFacts, PathRow

# The steps of the parts the reconciler takes in turn, as the engine wires them.
SettleWait = Callable[[str, LocalFacts, float, float], float]  # Settle.wait
Identify = Callable[[str, FolderConfig, PurePath, str, str, LocalFacts],
                    Awaitable[PathRow | None]]  # Identifier.identify
Gone = Callable[[str, FolderConfig | None], Awaitable[None]]  # Identifier.gone
Skip = Callable[[str, FolderConfig, str, str, LocalFacts, str], None]  # Identifier.skip
Ready = Callable[[], Awaitable[ContentRow | None]]
Output = Callable[[str, PurePath, str, Desired, Ready | None], Awaitable[None]]  # Producer.output
# Producer.too_long_for_all
TooLong = Callable[[str, PurePath, str, list[Desired]], Awaitable[bool]]


class Reconciler:
    def __init__(
        self,
        ctx: Context,
        queue: Requeue,
        halt: Halt,
        *,
        take_stat: Callable[[str], LocalFacts | None],
        settle_wait: SettleWait,
        identify: Identify,
        gone: Gone,
        skip: Skip,
        ensure_copy: Callable[[str], Awaitable[ContentRow]],
        output: Output,
        keeps: Callable[[str, str], bool],
        using: Callable[[str], AbstractAsyncContextManager[None]],
        replan: Callable[[], None],
        too_long: TooLong | None = None,
    ) -> None:
        """``take_stat``: the scan's stat of a path, once (Folders.take_stat);
        ``ensure_copy(sha)``: the content's usable remote copy (Mirror.ensure);
        ``keeps(path, sha)``: whether the copy is made before the outputs and kept alive
        (keep_alive and the storage budget), else made only when a generation needs it;
        ``using(sha)``: held while the pass may use the copy (Mirror.using);
        ``replan()``: a new content, plan the storage budget again (Mirror.replan);
        ``too_long``: whether no output can take the media's length, before its
        first copy (Producer.too_long_for_all)."""
        self._ctx = ctx
        self._queue = queue
        self._halt = halt
        self._take_stat = take_stat
        self._settle_wait = settle_wait
        self._identify = identify
        self._gone = gone
        self._skip = skip
        self._ensure_copy = ensure_copy
        self._output = output
        self._keeps = keeps
        self._using = using
        self._replan = replan
        self._too_long = too_long

    async def reconcile(self, path: str) -> None:
        """Take the next step for one path: settle, identify, mirror, outputs."""
        folder = self._ctx.config.folder_for(Path(path))
        rel = PurePath(os.path.relpath(path, folder.path)) if folder else None
        mt = is_candidate(rel, folder, self._ctx.suffixes) if folder and rel else None
        if folder is None or rel is None or mt is None:
            await self._gone(path, folder)
            return
        try:
            facts = await self._look(path, folder, rel)
        except LinkSkipped as e:
            self._skip(path, folder, mt.kind, mt.mime, e.facts, e.what)
            return
        if facts is None:
            return
        wait = self._settle_wait(path, facts, self._ctx.clock(), self._ctx.config.daemon.settle)
        if wait > 0:
            self._queue.schedule(path, self._ctx.monotonic() + wait)
            return
        row = await self._identify(path, folder, rel, mt.kind, mt.mime, facts)
        if row is None or row.problem or not row.sha256 or self._halt.why:
            return
        sha, ready = row.sha256, None
        wants = desired.desired(folder, path, row.kind, self._ctx.config.api.model)
        async with self._using(sha):
            if self._keeps(path, sha):
                if self._too_long is not None and await self._too_long(path, rel, sha, wants):
                    return  # too long for every output: nothing is uploaded for none
                if await self._copy(path, row) is None:
                    return
            else:
                # keep_alive = "on_use", or beyond the storage budget: a copy is made
                # only when an output is generated.
                ready = _Once(lambda: self._copy(path, row))
            for want in wants:
                await self._output(path, rel, sha, want, ready)

    async def _look(self, path: str, folder: FolderConfig, rel: PurePath) -> LocalFacts | None:
        """The path's stat (from the scan when fresh), or None when there is nothing to do."""
        within = str(folder.path) if folder.follow_symlinks else None
        try:
            return self._take_stat(path) or await self._ctx.fs.call(
                str(folder.path), local_facts, path, within
            )
        except LinkSkipped:
            raise  # listed in `status` as skipped, with the reason
        except FolderUnavailable:
            self._queue.later(path, self._ctx.clock() + UNAVAILABLE_RETRY)
        except FileNotFoundError:
            await self._gone(path, folder)
        except NotRegular as e:
            self._queue.note(path, "notregular", "skipping %s: %s, not a regular file", rel, e.what)
            await self._gone(path, folder)
        except OSError as e:
            self._queue.note(path, "stat", "cannot look at %s: %s", rel, e.strerror or e)
        return None

    async def _copy(self, path: str, row: PathRow) -> ContentRow | None:
        """The content's usable remote copy (uploaded if needed), or None for now."""
        assert row.sha256 is not None
        store = self._ctx.store
        if store.get_content(row.sha256) is None:
            store.ensure_content(row.sha256, row.size, row.mime, row.kind, self._ctx.clock())
            self._replan()
        try:
            return await self._ensure_copy(row.sha256)
        except ContentUnavailable as e:
            if e.changed:  # not a retry: the new bytes need hashing (in `sync` too)
                self._queue.schedule(path, self._ctx.monotonic() + self._ctx.config.daemon.settle)
            else:
                self._queue.later(path, e.retry_at)
        except ApiError as e:
            self._halt(e)
        return None


class _Once:
    """The copy asked for at most once per pass: a failure is not retried per output."""

    def __init__(self, make: Ready) -> None:
        self._make = make
        self._asked = False
        self._got: ContentRow | None = None

    async def __call__(self) -> ContentRow | None:
        if not self._asked:
            self._asked = True
            self._got = await self._make()
        return self._got
