"""`mediasync status` over a large library, on every core it may use.

Reading and deciding 100,000 files is a few seconds of one core, nearly all of it
per file. So the live paths are cut into ranges by name (Store.cut_paths); a forked
process reads, decides and writes (text lines, or JSON) each range but the first,
which this process does meanwhile; the parts join in path order
(status.render_parts, status.files_json).
Each process opens the database read-only on its own, as `status` always does
beside a running daemon (so a file the daemon renames meanwhile may be met in two
ranges, or in none: a report of a moment, as any `status` beside it is). A part that
does not come back (the process died, or its answer cannot be read) is made here
instead: slower, the same.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from mediasync.config import Config
from mediasync.report import batches, status
from mediasync.store import Store

T = TypeVar("T")

# Below this many files one process is quick enough, and a fork costs more than it saves.
SPLIT_AT = 20_000


def cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def parts(db: Path, config: Config, now: float, jobs: list[batches.JobReport],
          summarise: Callable[[Iterator[status.FileReport]], T],
          ways: int | None = None) -> list[T]:
    """``summarise`` of the live files' reports, a range of paths at a time, in path
    order (e.g. ``status.summarise``, ``status.json_part``): one value per range."""
    ways = cores() if ways is None else ways
    if threading.active_count() > 1:
        # A lock another thread holds at the fork (SQLite's, logging's) stays held in
        # the child for ever. `mediasync status` has no other thread; a caller that
        # has some reads every range here.
        ways = 1
    store = Store(db, readonly=True)
    try:
        # What every range shares is read once, here, and inherited by the forks.
        look = status.reading(store, config, now, jobs)
        cuts = store.cut_paths(min(ways, 8), SPLIT_AT)
        if not cuts:
            return [summarise(status.each(store, config, now, look=look))]
    finally:
        store.close()
    bounds = list(zip([None, *cuts], [*cuts, None], strict=True))

    def one(paths: tuple[object, object]) -> T:
        s = Store(db, readonly=True)
        try:
            return summarise(status.each(s, config, now, paths=paths, look=look))
        finally:
            s.close()

    children = [_fork(lambda paths=paths: one(paths)) for paths in bounds[1:]]
    out = [one(bounds[0])]
    for paths, child in zip(bounds[1:], children, strict=True):
        part = _collect(child)
        out.append(part if part is not None else one(paths))
    return out


def _fork(work: Callable[[], object]) -> tuple[int, int] | None:
    """Run ``work`` in a forked process; its pid and the pipe its answer comes on,
    or None when no process can be made (the caller does the work itself)."""
    try:
        r, w = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:  # the child: answer on the pipe and leave without the parent's exit work
        code = 1
        try:
            os.close(r)
            data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(w, "wb") as f:
                f.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def _collect(child: tuple[int, int] | None) -> Any:
    """The part a child sent, or None when it sent none it finished."""
    if child is None:
        return None
    pid, r = child
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, code = os.waitpid(pid, 0)
    if code != 0:
        return None
    try:
        return pickle.loads(data)
    except Exception:  # noqa: BLE001 - a cut answer: the range is read here instead
        return None
