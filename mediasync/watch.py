"""watchdog observers → dirty paths. Events are hints: they never upload or write.

The handler runs in watchdog's threads and only hands paths to the event loop
(``loop.call_soon_threadsafe``). Anything that means events were lost — an inotify
queue overflow, an observer thread that died — asks for a full rescan instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
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
from mediasync.media import media_type
from mediasync.select import ignored_name

log = logging.getLogger("mediasync")

# watchdog logs, but does not report to handlers, that the kernel dropped events.
_OVERFLOW_LOGGERS = ("watchdog.observers.inotify", "watchdog.observers.inotify_c")


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.w = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
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
    ) -> None:
        self.folders = tuple(folders)
        self.suffixes = frozenset(sidecar_suffixes)
        self.loop = loop
        self.on_path = on_path
        self.on_trouble = on_trouble
        self.observers: list[BaseObserver] = []
        self._hook = _OverflowHook(self)

    def start(self) -> list[str]:
        """Start observing; returns one message per folder that could not be watched."""
        problems = []
        handler = _Handler(self)
        for folder in self.folders:
            observer: BaseObserver = PollingObserver(timeout=2) if folder.polling else Observer()
            try:
                observer.schedule(handler, str(folder.path), recursive=folder.recursive)
                observer.start()
            except OSError as e:
                hint = ""
                if e.errno == 28:  # ENOSPC from inotify_add_watch: the watch limit
                    hint = " (raise fs.inotify.max_user_watches, or set polling = true)"
                problems.append(f"cannot watch {folder.path}: {e.strerror or e}{hint}")
                continue
            self.observers.append(observer)
        for name in _OVERFLOW_LOGGERS:
            logging.getLogger(name).addHandler(self._hook)
        return problems

    def stop(self) -> None:
        for name in _OVERFLOW_LOGGERS:
            logging.getLogger(name).removeHandler(self._hook)
        for o in self.observers:
            o.stop()
        for o in self.observers:
            o.join(timeout=5)
        self.observers = []

    def healthy(self) -> bool:
        return all(o.is_alive() for o in self.observers)

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
