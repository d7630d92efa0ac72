"""What a path holds: its stat and content hash (read only when the stat changed),
renames recognised by stat identity or hash so sidecars move along, and paths
that are gone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePath

from mediasync.config import FolderConfig
from mediasync.engine.context import UNAVAILABLE_RETRY, Context, Requeue
from mediasync.local import sidecar
from mediasync.local.folderio import FolderUnavailable
from mediasync.local.scan import ChangedWhileHashing, NotRegular, hash_file
from mediasync.rules import naming, steps
from mediasync.rules.rows import LocalFacts, PathRow

log = logging.getLogger("mediasync")

UNREADABLE_RETRY = 600.0  # seconds before an unreadable file is tried again

# The folder or sub-mount holding a path that cannot be looked at now, or None
Away = Callable[[str, FolderConfig], Awaitable[str | None]]


class Identifier:
    def __init__(
        self,
        ctx: Context,
        queue: Requeue,
        *,
        away: Away,
        forget_settle: Callable[[str], None],
        sweep_grace: Callable[[], float],
    ) -> None:
        """``away``: the folders' verdict on a missing path (Folders.away);
        ``forget_settle``: drop what settling kept of a gone path (Settle.forget);
        ``sweep_grace``: how long a gone path waits for its rename to be seen."""
        self._ctx = ctx
        self._queue = queue
        self._away = away
        self._forget_settle = forget_settle
        self._sweep_grace = sweep_grace

    async def identify(
        self,
        path: str,
        folder: FolderConfig,
        rel: PurePath,
        kind: str,
        mime: str,
        facts: LocalFacts,
    ) -> PathRow | None:
        """The path's row with its content hash, reading the file only when its stat changed."""
        row = self._ctx.store.get_path(path)
        same = row is not None and (row.size, row.mtime_ns, row.inode) == (
            facts.size,
            facts.mtime_ns,
            facts.inode,
        )
        # Video and audio over 2 GB go as an upload proxy, unless the folder says
        # upload = "original" (then "too large" is the file's verdict).
        proxied = kind in ("video", "audio") and self._ctx.config.upload_mode(
            Path(path), kind) != "original"
        problem = steps.local_problem(facts.size, proxied=proxied)
        settled = row is not None and (row.sha256 or (
            row.problem and not row.problem.startswith(steps.READ_PROBLEM)
            and row.problem == problem))  # a verdict the settings no longer give: again
        if row is not None and same and row.gone_at is None and settled:
            return row
        sha = row.sha256 if (row is not None and same) else None
        if problem is None and sha is None:
            read = await self._hash(path, folder, rel, facts)
            if read is None:
                return None
            sha, problem = read
        new = PathRow(
            path=path,
            folder=str(folder.path),
            size=facts.size,
            mtime_ns=facts.mtime_ns,
            inode=facts.inode,
            sha256=None if problem else sha,
            kind=kind,
            mime=mime,
            problem=problem,
            gone_at=None,
            updated_at=self._ctx.clock(),
        )
        self._ctx.store.put_path(new)
        if problem:
            if row is None or row.problem != problem:
                log.warning("%s: %s", rel, problem)
            return new
        assert sha is not None
        if row is not None and row.sha256 and row.sha256 != sha:
            log.info("%s changed; uploading the new version", rel)
            self._queue.sweep_soon(0.0)  # the old content may be unneeded now
        if row is None or row.sha256 != sha:
            await self.adopt_outputs(path, folder, sha)
        return new

    async def _hash(self, path: str, folder: FolderConfig, rel: PurePath,
                    facts: LocalFacts) -> tuple[str | None, str | None] | None:
        """(sha256, problem) of the file, from a renamed twin or by reading it; None
        when there is nothing to record now (it changed, vanished or is not a file)."""
        twin = await self.vanished_twin(path, facts)
        if twin is not None:
            return twin.sha256, None
        try:
            sha = await self._ctx.fs.call(str(folder.path), hash_file, path, facts, timeout=None)
        except FolderUnavailable:
            self._queue.later(path, self._ctx.clock() + UNAVAILABLE_RETRY)
        except ChangedWhileHashing:
            self._queue.schedule(path, self._ctx.monotonic() + self._ctx.config.daemon.settle)
        except FileNotFoundError:
            await self.gone(path, folder)
        except NotRegular as e:
            self._queue.note(path, "notregular", "skipping %s: %s", rel, e.what)
        except OSError as e:
            # Permissions and I/O errors change without the file changing: this is
            # looked at again on every scan (and said once), never a verdict.
            self._queue.later(path, self._ctx.clock() + UNREADABLE_RETRY)
            return None, f"{steps.READ_PROBLEM}: {e.strerror or e}"
        else:
            return sha, None
        return None

    async def exists(self, folder: str, path: str) -> bool:
        """``lexists`` in the folder's threads; a folder that does not answer or is
        unmounted, or a disk pulled from inside it, counts as still holding the path
        (nothing is taken for moved or deleted on a share or disk that is away)."""
        try:
            if await self._ctx.fs.call(folder, os.path.lexists, path):
                return True
        except FolderUnavailable:
            return True
        cfg = self._ctx.config.folder_for(Path(path))
        return cfg is not None and await self._away(path, cfg) is not None

    async def vanished_twin(self, path: str, facts: LocalFacts) -> PathRow | None:
        """A recorded path that no longer exists but had this very file (a rename)."""
        twin = self._ctx.store.find_twin(path, facts.inode, facts.size, facts.mtime_ns)
        if twin is not None and (
            twin.gone_at is not None or not await self.exists(twin.folder, twin.path)
        ):
            return twin
        return None

    async def adopt_outputs(self, path: str, folder: FolderConfig, sha: str) -> None:
        """A renamed (or moved) file takes its sidecars along: no new generation."""
        if self._ctx.store.get_outputs(path):
            return
        for old in self._ctx.store.paths_with_sha(sha, exclude=path):
            if old.gone_at is None and await self.exists(old.folder, old.path):
                continue  # a copy, not a rename
            recorded = self._ctx.store.get_outputs(old.path)
            moved: dict[str, str] = {}
            for suffix, out in recorded.items():
                target = naming.sidecar_for(Path(path), suffix)
                try:
                    ok = await self._ctx.fs.call(str(folder.path), sidecar.move_sidecar,
                                                 Path(out.sidecar), target)
                except FolderUnavailable:
                    ok = False
                except OSError as e:
                    # EXDEV across a sub-mount, a name too long, …: this one stays where
                    # it is (kept, and the new name gets its own); the others still move.
                    log.warning("could not move %s along: %s", out.sidecar, e.strerror or e)
                    ok = False
                if ok:
                    moved[suffix] = str(target)
            self._ctx.store.move_outputs(old.path, path, moved)
            self._ctx.store.delete_path(old.path)
            if moved:
                log.info(
                    "%s moved to %s; moved %d sidecar(s) with it",
                    old.path, path, len(moved),
                )
            return

    def skip(self, path: str, folder: FolderConfig, kind: str, mime: str, facts: LocalFacts,
             why: str) -> None:
        """Record a file mediasync does not mirror (a symbolic link not followed), so
        `status` lists it as skipped with ``why``; said once in the log."""
        problem = f"{steps.SKIPPED}{why}"
        row = self._ctx.store.get_path(path)
        if row is not None and row.problem == problem and row.gone_at is None:
            return
        self._ctx.store.put_path(PathRow(
            path=path, folder=str(folder.path), size=facts.size, mtime_ns=facts.mtime_ns,
            inode=facts.inode, sha256=None, kind=kind, mime=mime, problem=problem,
            gone_at=None, updated_at=self._ctx.clock()))
        if row is not None and row.sha256:
            self._queue.sweep_soon(0.0)  # a file replaced by a link: its content may go
        self._queue.note(path, "skipped", "skipping %s: %s", path, why)

    async def gone(self, path: str, folder: FolderConfig | None) -> None:
        self._forget_settle(path)
        row = self._ctx.store.get_path(path)
        if row is None or row.gone_at is not None:
            return
        if folder is not None and await self._away(path, folder) is not None:
            # An unmounted or hung share, or a disk pulled from inside the folder, is
            # not a folder of deleted files.
            return
        self._ctx.store.mark_gone(path, self._ctx.clock())
        log.info("%s is gone; its sidecars are kept", path)
        self._queue.sweep_soon(self._sweep_grace())

