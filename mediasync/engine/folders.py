"""The watched folders as the reconciler sees them: walking them (the scan), and
telling a folder that can be trusted from one that is unavailable (unmounted,
missing, not answering), in which nothing counts as deleted (docs/architecture.md, "Folders
that go away").
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from mediasync.config import FolderConfig
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
from mediasync.store import Meta

if TYPE_CHECKING:
    from mediasync.engine.dispatch import Engine

log = logging.getLogger("mediasync")

STALE_TEMP = 600.0  # seconds before a leftover sidecar temp file is removed
WALK_TIMEOUT = 1800.0  # a walk of a huge tree may take long; a hung share must still end it


class Folders:
    def __init__(self, engine: Engine) -> None:
        self.e = engine
        # folder → why it is unavailable; kept in the store for `status`
        self.unavailable: dict[str, str] = engine.store.read(Meta.UNAVAILABLE)
        self._rescans: set[asyncio.Task[int]] = set()

    async def scan(self) -> int:
        """Queue every candidate file and every recorded path; returns files found.

        Folders are walked side by side, each in its own threads: one that does not
        answer ends its walk at the time-out and holds up none of the others.
        """
        walks = await asyncio.gather(*(self._scan_folder(f) for f in self.e.config.folders))
        found: set[str] = set()
        reachable: set[str] = set()
        for folder, walked in zip(self.e.config.folders, walks, strict=True):
            if walked is not None:
                reachable.add(str(folder.path))
                found.update(walked)
        known = {r.path for r in self.e.store.all_paths() if r.gone_at is None}
        # Vanished paths first: a rename's old path must be seen gone before its new one.
        for p in sorted(known - found):
            folder = self.e.config.folder_for(Path(p))
            away = availability.unavailable_holding(p, self.unavailable)
            if folder is None or (str(folder.path) in reachable and away is None):
                self.e.mark_dirty(p, event=False)
        for p in sorted(found):
            self.e.mark_dirty(p, event=False)
        return len(found)

    async def _scan_folder(self, folder: FolderConfig) -> list[str] | None:
        """The folder's candidate files (their stat cached), or None when it is unavailable."""
        key = str(folder.path)
        look = await self.available(folder)
        if look is None:
            return None
        temp_dirs: set[str] = set()
        try:
            files = await self.e.fs.call(key, walk_folder, folder, self.e.suffixes, temp_dirs,
                                       timeout=WALK_TIMEOUT)
            self.e.scanned.update(await self.e.fs.call(key, stat_all, files, timeout=WALK_TIMEOUT))
            for d in temp_dirs:
                # Temp files of a write a crash interrupted; young ones may be in flight.
                await self.e.fs.call(key, sidecar.clean_stale_temps, Path(d), STALE_TEMP,
                                   self.e.clock())
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
        if self.e.store.read(Meta.folder_dev(key)) != str(look.dev):
            self.e.store.write(Meta.folder_dev(key), str(look.dev))
        if look.mounts is None:
            return  # mount table unreadable: keep what was recorded
        mount = holding_mount(look.real_path, look.mounts) or ""
        if self.e.store.read(Meta.folder_mount(key)) != mount:
            self.e.store.write(Meta.folder_mount(key), mount)
        # walk_folder follows no symlink: a file's path below the folder is the same
        # below its real path, which is how the mount table names things.
        prefix = key.rstrip("/") + "/"
        held = submounts_holding(look.real_path, (f[len(prefix):] for f in files), look.mounts)
        recorded = self.submounts(key)
        away = [rel for rel in recorded if _join(key, rel) in self.unavailable]
        self._set_submounts(key, availability.record_submounts(recorded, held, away))

    def submounts(self, key: str) -> list[str]:
        """The folder's recorded sub-mounts, relative to it (meta ``folder_submounts:``)."""
        return [v for v in self.e.store.read(Meta.folder_submounts(key)) if isinstance(v, str)]

    def _set_submounts(self, key: str, rels: list[str]) -> None:
        if rels != self.submounts(key):
            self.e.store.write(Meta.folder_submounts(key), rels)

    async def available(self, folder: FolderConfig) -> FolderLook | None:
        """What the folder looks like when its listing can be trusted, else None (said once).

        Missing, an empty mount point whose file system (or bind mount) is gone, or
        not answering: then nothing in it counts as deleted.
        """
        key = str(folder.path)
        submounts = self.submounts(key)
        try:
            look = await self.e.fs.call(key, look_at_folder, key, submounts)
        except FolderUnavailable:
            self._set_unavailable(key, "does not answer")
            return None
        except OSError as e:
            # Its parent is gone too (udisks removes /media/<user>/LABEL on unmount
            # while the folder is …/LABEL/DCIM), or a permission or I/O error.
            self._set_unavailable(key, f"cannot be looked at ({e.strerror or e})")
            return None
        recorded = self.e.store.read(Meta.folder_dev(key))
        why = availability.folder_unavailable(
            look.dev, look.parent_dev, int(recorded) if recorded else None,
            self.e.store.read(Meta.folder_mount(key)) or None, look.mounts,
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
        self.e.store.write(Meta.UNAVAILABLE, self.unavailable)

    def folder_answers(self, folder: str) -> None:
        """A stuck call in a folder returned: look at everything again."""
        log.info("folder %s answers again; rescanning", folder)
        task = asyncio.ensure_future(self.scan())
        self._rescans.add(task)
        task.add_done_callback(self._rescans.discard)


def _join(key: str, rel: str) -> str:
    """A sub-mount's key: its path as the configured folder names it."""
    return f"{key.rstrip('/')}/{rel}"
