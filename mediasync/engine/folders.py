"""The watched folders as the reconciler sees them: walking them (the scan), and
telling a folder that can be trusted from one that is unavailable (unmounted,
missing, not answering), in which nothing counts as deleted (docs/architecture.md, "Folders
that go away").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from mediasync.config import FolderConfig
from mediasync.engine.context import Context, Requeue
from mediasync.local import sidecar
from mediasync.local.folderio import (
    FolderLook,
    FolderUnavailable,
    holding_mount,
    look_at_folder,
    submounts_holding,
)
from mediasync.local.scan import stat_all, walk_folder
from mediasync.rules import availability
from mediasync.rules.rows import LocalFacts
from mediasync.store import Meta

log = logging.getLogger("mediasync")

STALE_TEMP = 600.0  # seconds before a leftover sidecar temp file is removed
WALK_TIMEOUT = 1800.0  # a walk of a huge tree may take long; a hung share must still end it


# The found paths (with the scan's stat) the reconciler would take no step for (Rest.settled)
AtRest = Callable[[Mapping[str, LocalFacts]], Awaitable[set[str]]]


class Folders:
    def __init__(self, ctx: Context, queue: Requeue, *, at_rest: AtRest | None = None) -> None:
        """``at_rest``: which found files need not be queued (none without it)."""
        self._ctx = ctx
        self._queue = queue  # the scan queues what it found
        self._at_rest = at_rest
        # folder → why it is unavailable; kept in the store for `status`
        self.unavailable: dict[str, str] = ctx.store.read(Meta.UNAVAILABLE)
        self._scanned: dict[str, LocalFacts] = {}  # stat taken by the last scan
        self._rescans: set[asyncio.Task[int]] = set()

    def take_stat(self, path: str) -> LocalFacts | None:
        """The stat the last scan took of ``path``, handed out once (then it is old)."""
        return self._scanned.pop(path, None)

    def stale(self, path: str) -> None:
        """``path`` changed since the scan: its stat from the scan is stale."""
        self._scanned.pop(path, None)

    async def scan(self) -> int:
        """Queue every candidate file and every recorded path; returns files found.

        Folders are walked side by side, each in its own threads: one that does not
        answer ends its walk at the time-out and holds up none of the others.
        """
        walks = await asyncio.gather(*(self._scan_folder(f) for f in self._ctx.config.folders))
        found: set[str] = set()
        reachable: set[str] = set()
        for folder, walked in zip(self._ctx.config.folders, walks, strict=True):
            if walked is not None:
                reachable.add(str(folder.path))
                found.update(walked)
        # Vanished paths first: a rename's old path must be seen gone before its new one.
        gone = sorted(p for p in self._ctx.store.live_path_names() if p not in found)
        for p in gone:
            folder = self._ctx.config.folder_for(Path(p))
            away = availability.unavailable_holding(p, self.unavailable)
            if folder is None or (str(folder.path) in reachable and away is None):
                self._queue.mark_dirty(p, event=False)
        resting = await self._resting(found)
        for p in sorted(found - resting):
            self._queue.mark_dirty(p, event=False)
        return len(found)

    async def _resting(self, found: set[str]) -> set[str]:
        """The found files at rest; their stats are dropped (nothing will take them)."""
        if self._at_rest is None:
            return set()
        scanned = self._scanned
        resting = await self._at_rest({p: scanned[p] for p in found if p in scanned})
        for p in resting:
            scanned.pop(p, None)
        return resting

    async def _scan_folder(self, folder: FolderConfig) -> list[str] | None:
        """The folder's candidate files (their stat cached), or None when it is unavailable."""
        key = str(folder.path)
        look = await self.available(folder)
        if look is None:
            return None
        temp_dirs: set[str] = set()
        try:
            fs = self._ctx.fs
            files = await fs.call(key, walk_folder, folder, self._ctx.suffixes, temp_dirs,
                                  timeout=WALK_TIMEOUT)
            within = key if folder.follow_symlinks else None
            self._scanned.update(await fs.call(key, stat_all, files, within,
                                               timeout=WALK_TIMEOUT))
            for d in temp_dirs:
                # Temp files of a write a crash interrupted; young ones may be in flight.
                await fs.call(key, sidecar.clean_stale_temps, Path(d), STALE_TEMP,
                              self._ctx.clock())
        except FolderUnavailable:
            self._set_unavailable(key, "does not answer")
            return None
        if files:
            self._record(key, look, files)
        return files

    def _record(self, key: str, look: FolderLook, files: list[str]) -> None:
        """Seen with files: an empty mount point later, on this device or with this
        mount point gone from the mount table, is an unmount, not deleted files; so
        is a disk mounted inside the folder that held some of them."""
        if self._ctx.store.read(Meta.folder_dev(key)) != str(look.dev):
            self._ctx.store.write(Meta.folder_dev(key), str(look.dev))
        if look.mounts is None:
            return  # mount table unreadable: keep what was recorded
        mount = holding_mount(look.real_path, look.mounts) or ""
        if self._ctx.store.read(Meta.folder_mount(key)) != mount:
            self._ctx.store.write(Meta.folder_mount(key), mount)
        # walk_folder follows no symlink: a file's path below the folder is the same
        # below its real path, which is how the mount table names things.
        prefix = key.rstrip("/") + "/"
        held = submounts_holding(look.real_path, (f[len(prefix):] for f in files), look.mounts)
        recorded = self.submounts(key)
        away = [rel for rel in recorded if _join(key, rel) in self.unavailable]
        self._set_submounts(key, availability.record_submounts(recorded, held, away))

    def submounts(self, key: str) -> list[str]:
        """The folder's recorded sub-mounts, relative to it (meta ``folder_submounts:``)."""
        return [v for v in self._ctx.store.read(Meta.folder_submounts(key)) if isinstance(v, str)]

    def _set_submounts(self, key: str, rels: list[str]) -> None:
        if rels != self.submounts(key):
            self._ctx.store.write(Meta.folder_submounts(key), rels)

    async def available(self, folder: FolderConfig) -> FolderLook | None:
        """What the folder looks like when its listing can be trusted, else None (said once).

        Missing, an empty mount point whose file system (or bind mount) is gone, or
        not answering: then nothing in it counts as deleted.
        """
        key = str(folder.path)
        submounts = self.submounts(key)
        try:
            look = await self._ctx.fs.call(key, look_at_folder, key, submounts)
        except FolderUnavailable:
            self._set_unavailable(key, "does not answer")
            return None
        except OSError as e:
            # Its parent is gone too (udisks removes /media/<user>/LABEL on unmount
            # while the folder is …/LABEL/DCIM), or a permission or I/O error.
            self._set_unavailable(key, f"cannot be looked at ({e.strerror or e})")
            return None
        recorded = self._ctx.store.read(Meta.folder_dev(key))
        why = availability.folder_unavailable(
            look.dev, look.parent_dev, int(recorded) if recorded else None,
            self._ctx.store.read(Meta.folder_mount(key)) or None, look.mounts,
        )
        self._set_unavailable(key, why)
        if why is not None:
            return None  # its sub-mounts' directories are out of sight too: keep them
        self._look_at_submounts(key, look, submounts)
        return look

    def _look_at_submounts(self, key: str, look: FolderLook, submounts: list[str]) -> None:
        """Mark the folder's pulled sub-mounts unavailable, and the returned ones back."""
        away = availability.submounts_unavailable(
            look.real_path, submounts, look.mounts, look.present)
        for rel in submounts:
            self._set_unavailable(_join(key, rel), away.get(rel),
                                  removed=rel not in look.present)
        # A mount point whose directory was removed is forgotten: what it held is deleted.
        self._set_submounts(key, [rel for rel in submounts if rel in look.present])
        prefix = key.rstrip("/") + "/"
        for stale in [k for k in self.unavailable if k.startswith(prefix)]:
            if stale[len(prefix):] not in submounts:
                self._set_unavailable(stale, None, removed=True)

    async def away(self, path: str, folder: FolderConfig) -> str | None:
        """The folder or sub-mount holding ``path`` that cannot be looked at now, or None:
        then a missing file there is not deleted."""
        if await self.available(folder) is None:
            return str(folder.path)
        return availability.unavailable_holding(path, self.unavailable)

    def _set_unavailable(self, folder: str, why: str | None, *, removed: bool = False) -> None:
        if self.unavailable.get(folder) == why:
            return
        if why is None:
            del self.unavailable[folder]
            if removed:
                log.info("%s was removed; what it held counts as deleted", folder)
            else:
                log.info("folder %s is available again", folder)
        else:
            self.unavailable[folder] = why
            log.warning("folder %s %s; nothing in it counts as deleted while it is unavailable",
                        folder, why)
        self._ctx.store.write(Meta.UNAVAILABLE, self.unavailable)

    def folder_answers(self, folder: str) -> None:
        """A stuck call in a folder returned: look at everything again."""
        log.info("folder %s answers again; rescanning", folder)
        task = asyncio.ensure_future(self.scan())
        self._rescans.add(task)
        task.add_done_callback(self._rescans.discard)


def _join(key: str, rel: str) -> str:
    """A sub-mount's key: its path as the configured folder names it."""
    return f"{key.rstrip('/')}/{rel}"
