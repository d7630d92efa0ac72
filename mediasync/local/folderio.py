"""File calls per watched folder, off the event loop, each with a time-out.

A network share that stops answering blocks ``stat`` in the kernel, without a
time-out and beyond the reach of cancellation. So every folder gets its own few
daemon threads: a hung folder ties up only those (never the shared executor the
rest of the daemon needs), its callers get ``FolderUnavailable`` after the
time-out, and further calls fail at once until the stuck one returns. Daemon
threads also let the process exit on SIGTERM while a call is still stuck.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import select
import stat
import threading
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

from mediasync.rules.availability import holder

T = TypeVar("T")

FOLDER_TIMEOUT = 30.0  # seconds a stat may take before its folder counts as not answering
WORKERS = 4  # threads per folder for timed calls (stat, walks, sidecar reads)
LONG_WORKERS = WORKERS - 1  # threads per folder for untimed calls (hashing large files)


class FolderUnavailable(Exception):
    """The folder does not answer (a call timed out, or one is still stuck)."""

    def __init__(self, folder: str) -> None:
        super().__init__(f"{folder} does not answer")
        self.folder = folder


class _Job:
    """One call in a folder's thread, answered on the event loop that asked for it.

    The worker hands the outcome back with one ``call_soon_threadsafe``: no
    concurrent.futures.Future, ``wrap_future``, ``shield`` and ``wait_for`` around
    it (their futures and callbacks cost more than a stat or a small read itself,
    and a first sync makes several such calls per file).
    """

    __slots__ = ("fn", "args", "loop", "waiter", "done", "stuck", "on_done")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.fn = fn
        self.args = args
        self.loop = loop
        self.waiter: asyncio.Future[Any] = loop.create_future()
        self.done = False  # the call returned (set in the worker thread)
        self.stuck = False  # its caller gave up waiting (set on the loop)
        self.on_done: Callable[[], None] | None = None  # told on the loop when a stuck one returns

    def run(self) -> None:
        """In the worker thread."""
        try:
            outcome: tuple[bool, Any] = (True, self.fn(*self.args))
        except BaseException as e:  # handed to the awaiting coroutine
            outcome = (False, e)
        self.done = True
        try:
            self.loop.call_soon_threadsafe(self._settle, outcome)
        except RuntimeError:
            pass  # the loop closed (shutdown) before the call returned

    def _settle(self, outcome: tuple[bool, Any]) -> None:
        ok, value = outcome
        if not self.waiter.done():  # not given up on, not cancelled
            if ok:
                self.waiter.set_result(value)
            else:
                self.waiter.set_exception(value)
        if self.stuck and self.on_done is not None:
            self.on_done()

    def expire(self) -> None:
        """The time-out: the caller stops waiting; the call goes on in its thread."""
        if not self.waiter.done():
            self.stuck = True
            self.waiter.set_exception(_TimedOut())


class _TimedOut(Exception):
    pass


class _Pool:
    """Up to ``workers`` daemon threads fed by one queue, started as work arrives
    (ThreadPoolExecutor's threads are joined at exit: a stuck one would block it)."""

    def __init__(self, name: str, workers: int) -> None:
        self._name = name
        self._workers = workers
        self._q: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, job: _Job) -> None:
        with self._lock:
            if self._idle == 0 and self._threads < self._workers:
                self._threads += 1
                threading.Thread(target=self._work, name=f"fs {self._name}", daemon=True).start()
            else:
                self._idle = max(0, self._idle - 1)
        self._q.put(job)

    def _work(self) -> None:
        while True:  # a daemon thread: it ends with the process
            self._q.get().run()
            with self._lock:
                self._idle += 1


class FolderIO:
    """Run blocking file calls for one folder at a time-out, in that folder's threads.

    ``gate(folder)`` runs in the worker before each call: tests use it to make
    one folder hang without a real dead NFS server.

    Untimed calls (hashing a large video may take many minutes) run in threads of
    their own: a time-out counts from the call's submission, so a short timed call
    queued behind them would be taken for a hung share.
    """

    def __init__(
        self,
        timeout: float = FOLDER_TIMEOUT,
        *,
        gate: Callable[[str], None] | None = None,
    ) -> None:
        self.timeout = timeout
        self.gate = gate
        self._pools: dict[tuple[str, bool], _Pool] = {}  # (folder, untimed) → its threads
        self._stuck: dict[str, _Job] = {}
        self.on_recover: Callable[[str], None] | None = None

    def hung(self, folder: str) -> bool:
        stuck = self._stuck.get(folder)
        return stuck is not None and not stuck.done

    async def call(
        self, folder: str, fn: Callable[..., T], *args: Any, timeout: float | None = -1.0
    ) -> T:
        """``fn(*args)`` in the folder's threads; ``timeout=None`` waits as long as it takes
        (hashing a large file), the default is the folder time-out."""
        if self.hung(folder):
            raise FolderUnavailable(folder)
        untimed = timeout is None
        pool = self._pools.get((folder, untimed))
        if pool is None:
            pool = self._pools[(folder, untimed)] = _Pool(
                folder, LONG_WORKERS if untimed else WORKERS)
        gate = self.gate
        if gate is not None:
            inner = fn

            def fn(*a: Any) -> T:
                gate(folder)
                return inner(*a)

        loop = asyncio.get_running_loop()
        job = _Job(fn, args, loop)
        pool.submit(job)
        limit = self.timeout if timeout is not None and timeout < 0 else timeout
        if limit is None:
            return await job.waiter  # type: ignore[no-any-return]
        timer = loop.call_later(limit, job.expire)
        try:
            return await job.waiter  # type: ignore[no-any-return]
        except _TimedOut:
            self._stuck[folder] = job
            job.on_done = lambda: self._recovered(folder)
            if job.done:  # it returned just as the time ran out: told on the loop soon
                loop.call_soon(self._recovered, folder)
            raise FolderUnavailable(folder) from None
        finally:
            timer.cancel()

    def _recovered(self, folder: str) -> None:
        stuck = self._stuck.get(folder)
        if stuck is not None and stuck.done:
            del self._stuck[folder]
            if self.on_recover is not None:
                self.on_recover(folder)


MOUNTINFO = "/proc/self/mountinfo"
_OCTAL = re.compile(rb"\\([0-7]{3})")


class FolderLook(NamedTuple):
    """What one look at a watched folder saw (see ``look_at_folder``)."""

    dev: int | None  # st_dev of the folder, None when it is no directory
    parent_dev: int  # st_dev of its parent
    real_path: str  # symlinks resolved, as mountinfo names it
    mounts: frozenset[str] | None  # every mount point now; None when mountinfo is unreadable
    present: frozenset[str] = frozenset()  # the asked-for sub-mounts that are directories


def parse_mount_points(text: bytes) -> frozenset[str]:
    """The mount points (5th field) of ``/proc/<pid>/mountinfo`` text, unescaped.

    The kernel writes space, tab, newline and backslash in a path as ``\\ooo``
    octal escapes; the bytes are decoded as file names are (surrogateescape).
    """
    points = set()
    for line in text.splitlines():
        fields = line.split(b" ")
        if len(fields) >= 5:
            raw = _OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), fields[4])
            points.add(os.fsdecode(raw))
    return frozenset(points)


def holding_mount(real_path: str, mounts: frozenset[str]) -> str | None:
    """The innermost mount point that is ``real_path`` or holds it, unless that is ``/``."""
    return holder(real_path, (m for m in mounts if m != "/"))


def submounts_holding(
    folder_real: str, rels: Iterable[str], mounts: frozenset[str]
) -> set[str]:
    """The mount points strictly inside ``folder_real`` (relative to it) that hold at
    least one of ``rels`` (paths relative to the folder), each file counted for its
    innermost one."""
    prefix = folder_real.rstrip("/") + "/"
    inside = sorted((m[len(prefix):] for m in mounts if m.startswith(prefix) and m != prefix),
                    key=len, reverse=True)
    if not inside:
        return set()  # the usual case: no walk over the files
    held: set[str] = set()
    for rel in rels:
        for point in inside:
            if rel.startswith(point + "/"):
                held.add(point)
                break
    return held


def read_mount_points(path: str = MOUNTINFO) -> frozenset[str] | None:
    try:
        with open(path, "rb") as f:
            return parse_mount_points(f.read())
    except OSError:
        return None  # no /proc (some sandboxes): the device comparison still holds


class MountTable:
    """The mount points, parsed again only when the kernel says the table changed.

    An open ``/proc/self/mountinfo`` polls POLLPRI once after every mount or
    unmount (proc(5)): a burst of vanished files (5,000 deleted at once) costs one
    read of the table, not one each, and no change goes unseen.
    """

    def __init__(self, path: str = MOUNTINFO) -> None:
        self._path = path
        self._lock = threading.Lock()  # looks at several folders run side by side
        self._file: Any = None
        self._poll = select.poll()
        self._points: frozenset[str] | None = None
        self.reads = 0

    def points(self) -> frozenset[str] | None:
        """Every mount point now; None when the table cannot be read."""
        with self._lock:
            if self._file is None:
                try:
                    self._file = open(self._path, "rb", buffering=0)  # noqa: SIM115 - kept
                except OSError:
                    return None  # no /proc (some sandboxes): the device comparison still holds
                self._poll.register(self._file, select.POLLPRI)
            elif not self._poll.poll(0) and self._points is not None:
                return self._points
            try:
                self._file.seek(0)
                self._points = parse_mount_points(self._file.read())
            except OSError:
                self._points = None
            self.reads += 1
            return self._points


_MOUNTS = MountTable()


def look_at_folder(path: str, submounts: Iterable[str] = ()) -> FolderLook:
    """Devices of the folder and its parent, the mount table, and which of the
    ``submounts`` (relative to the folder) are still directories, for
    ``availability.folder_unavailable`` and ``availability.submounts_unavailable``.

    Blocking: run it through ``FolderIO.call``.
    """
    real = os.path.realpath(path)
    parent = os.stat(os.path.dirname(real) or "/").st_dev
    try:
        st = os.stat(real)
        dev = st.st_dev if stat.S_ISDIR(st.st_mode) else None
    except (FileNotFoundError, NotADirectoryError):
        dev = None
    present = frozenset(
        rel for rel in submounts if dev is not None and os.path.isdir(os.path.join(real, rel))
    )
    return FolderLook(dev, parent, real, _MOUNTS.points(), present)
