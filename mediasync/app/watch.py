"""watchdog observers → dirty paths. Events are hints: they never upload or write.

The handler runs in watchdog's threads and only hands paths to the event loop
(``loop.call_soon_threadsafe``). Anything that means events were lost — an inotify
queue overflow, an observer thread that died — asks for a full rescan instead.

Setting a watch up (``inotify_add_watch`` over a whole tree) blocks on a share
that does not answer, so each folder's set-up runs in that folder's threads at a
time-out. A watch dies silently when its folder is unmounted, remounted or
deleted and made again; the health check notices by the folder's (st_dev, st_ino).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterable

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedNoWriteEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from mediasync.config import FolderConfig
from mediasync.local.candidates import ignored_name
from mediasync.local.folderio import FolderIO, FolderUnavailable
from mediasync.media.formats import media_type
from mediasync.rules.availability import holder

log = logging.getLogger("mediasync")

# watchdog logs, but does not report to handlers, that the kernel dropped events.
_OVERFLOW_LOGGERS = ("watchdog.observers.inotify", "watchdog.observers.inotify_c")
START_TIMEOUT = 60.0  # seconds a folder's watch set-up may take (a large tree, a slow share)


Identity = tuple[int, int, int]


def folder_identity(path: str) -> Identity | None:
    """What the watch is bound to: (st_dev, st_ino, st_ctime_ns) of the folder.

    A recreated folder has a new inode; a file system mounted again may reuse the
    st_dev and root inode (tmpfs) but its root has a new ctime; an unmount that
    lasts over a health check is seen as the bare mount point. Files added to the
    folder move its ctime too: Watcher.healthy forgives a change its watch saw
    events for, by the following check at the latest.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_ctime_ns


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.w = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.w.saw(os.fsdecode(event.src_path))  # before any filter: the watch is alive
        if isinstance(event, (FileOpenedEvent, FileClosedNoWriteEvent)):
            return  # reads (ours included) change nothing
        if isinstance(event, (DirCreatedEvent, DirMovedEvent)) and event.event_type in (
            "created",
            "moved",
        ):
            # A folder moved in brings files that raise no events of their own.
            self.w.trouble(f"directory {os.fsdecode(event.src_path)} appeared or moved")
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                self.w.hint(os.fsdecode(raw), is_dir=event.is_directory)


class _OverflowHook(logging.Handler):
    def __init__(self, watcher: Watcher) -> None:
        super().__init__(logging.WARNING)
        self.w = watcher

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.w.trouble("the inotify queue overflowed")


class Watcher:
    """One observer per folder (polling for network shares, by option)."""

    def __init__(
        self,
        folders: Iterable[FolderConfig],
        sidecar_suffixes: Iterable[str],
        loop: asyncio.AbstractEventLoop,
        on_path: Callable[[str], None],
        on_trouble: Callable[[str], None],
        fs: FolderIO | None = None,
        identity: Callable[[str], Identity | None] = folder_identity,
    ) -> None:
        """``identity(folder)``: what a watch is bound to (folder_identity; a test may
        show a remount through it)."""
        self.folders = tuple(folders)
        self._ident = identity
        self.suffixes = frozenset(sidecar_suffixes)
        self.loop = loop
        self.on_path = on_path
        self.on_trouble = on_trouble
        self.observers: list[BaseObserver] = []
        self._hook = _OverflowHook(self)
        self.fs = fs or FolderIO()
        self._identity: dict[str, Identity | None] = {}  # folder → when watched
        self._seen: set[str] = set()  # folders with an event since the last health check
        # folder → a ctime change no event has explained yet; its event may be on its
        # way (a polling observer reports every 2 s, inotify holds a moved_from 0.5 s)
        self._pending: dict[str, Identity] = {}
        self._stopped = False

    async def start(self) -> list[str]:
        """Start observing; returns one message per folder that could not be watched.

        Folders are set up side by side, each at a time-out: a hung share delays
        neither the others nor the event loop.
        """
        handler = _Handler(self)
        problems = await asyncio.gather(*(self._start_one(f, handler) for f in self.folders))
        for name in _OVERFLOW_LOGGERS:
            logging.getLogger(name).addHandler(self._hook)
        return [p for p in problems if p]

    async def _start_one(self, folder: FolderConfig, handler: _Handler) -> str | None:
        key = str(folder.path)
        start = _Start()
        try:
            observer, self._identity[key] = await self.fs.call(
                key, _observe, folder, handler, start, self._ident, timeout=START_TIMEOUT
            )
        except FolderUnavailable:
            start.abandon()
            self._identity[key] = None  # the health check re-arms it once it answers
            return f"cannot watch {folder.path}: it does not answer"
        except OSError as e:
            try:
                self._identity[key] = await self.fs.call(key, self._ident, key)
            except FolderUnavailable:
                self._identity[key] = None
            hint = ""
            if e.errno == 28:  # ENOSPC from inotify_add_watch: the watch limit
                hint = " (raise fs.inotify.max_user_watches, or set polling = true)"
            return f"cannot watch {folder.path}: {e.strerror or e}{hint}"
        if self._stopped:
            observer.stop()
        else:
            self.observers.append(observer)
        return None

    def stop(self) -> None:
        self._stopped = True
        for name in _OVERFLOW_LOGGERS:
            logging.getLogger(name).removeHandler(self._hook)
        for o in self.observers:
            o.stop()
        for o in self.observers:
            o.join(timeout=5)
        self.observers = []

    async def healthy(self) -> bool:
        """False when an observer died or a folder is no longer what its watch is bound to."""
        if not all(o.is_alive() for o in self.observers):
            return False
        if not all(e.is_alive() for o in self.observers for e in o.emitters):
            return False  # watchdog ends an emitter whose folder was deleted
        seen, self._seen = self._seen, set()
        for key, was in list(self._identity.items()):
            try:
                now = await self.fs.call(key, self._ident, key)
            except FolderUnavailable:
                continue  # a share that does not answer: nothing to re-arm yet
            if now == was:
                self._pending.pop(key, None)
                continue
            if now and was and now[:2] == was[:2]:
                if key in seen:
                    self._identity[key] = now  # files came and went, and the watch saw them
                    self._pending.pop(key, None)
                    continue
                if key not in self._pending:
                    self._pending[key] = now  # unexplained: dead only if still so next time
                    continue
            log.warning("%s was unmounted, remounted or made again; its watch is dead", key)
            return False
        return True

    def watched(self, key: str) -> Identity | None:
        """The identity the watch of folder ``key`` is bound to now."""
        return self._identity.get(key)

    def events_since_check(self) -> frozenset[str]:
        """The folders with an event since the last health check."""
        return frozenset(self._seen)

    def saw(self, path: str) -> None:
        """An event arrived (watchdog's thread): the watch of its folder is alive."""
        # list(): a copy made at once (GIL), as the loop may add folders meanwhile;
        # folders never nest (config), so one holds the path at most
        key = holder(path, list(self._identity))
        if key is not None:
            self._seen.add(key)

    # -- called from watchdog's threads ---------------------------------------
    def hint(self, path: str, *, is_dir: bool) -> None:
        name = os.path.basename(path)
        if not is_dir and (ignored_name(name, self.suffixes) or media_type(name) is None):
            return  # our own sidecars and temp files must not wake us (no loops)
        if is_dir:
            return
        self._call(self.on_path, path)

    def trouble(self, why: str) -> None:
        self._call(self.on_trouble, why)

    def _call(self, fn: Callable[[str], None], arg: str) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, arg)
        except RuntimeError:
            pass  # the loop is closing: shutdown is under way


class _Start:
    """One folder's watch set-up, which its caller may give up on at the time-out:
    an observer the set-up starts afterwards is stopped, not left running unowned."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._abandoned = False
        self._observer: BaseObserver | None = None

    def started(self, observer: BaseObserver) -> None:
        with self._lock:
            if not self._abandoned:
                self._observer = observer
                return
        observer.stop()

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            late, self._observer = self._observer, None
        if late is not None:
            late.stop()  # it came just as the caller gave up


def _observe(
    folder: FolderConfig, handler: _Handler, start: _Start,
    identity: Callable[[str], Identity | None] = folder_identity,
) -> tuple[BaseObserver, Identity | None]:
    """Blocking: a started observer of the folder, and the folder's identity it watches."""
    key = str(folder.path)
    ident = identity(key)
    observer: BaseObserver = PollingObserver(timeout=2) if folder.polling else Observer()
    observer.schedule(handler, key, recursive=folder.recursive)
    observer.start()
    start.started(observer)
    return observer, ident
