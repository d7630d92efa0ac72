"""What the engine's parts are given, made for their tests: a context over a
temporary watched folder and store, and a queue that records what a part asked of it
(the parts hold no engine, so none is built here)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mediasync.config import parse_config
from mediasync.engine.context import Context
from mediasync.gemini import GeminiClient
from mediasync.local.folderio import FolderIO, FolderUnavailable
from mediasync.store import Store

SETTLE = 2.0  # the tests' daemon.settle, in seconds
WALL = 1_700_000_000.0  # the context's wall clock starts here
MONO = 500.0  # and its monotonic clock here


class Ticks:
    """A clock that stands still until the test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Queue:
    """The engine's ``Requeue`` as a record: ``asked`` lists (method, arguments...)."""

    def __init__(self) -> None:
        self.asked: list[tuple[Any, ...]] = []

    def schedule(self, path: str, due: float) -> None:
        self.asked.append(("schedule", path, due))

    def later(self, path: str, at_wall: float | None) -> None:
        self.asked.append(("later", path, at_wall))

    def mark_dirty(self, path: str, *, event: bool = True) -> None:
        self.asked.append(("mark_dirty", path, event))

    def sweep_soon(self, delay: float) -> None:
        self.asked.append(("sweep_soon", delay))

    def note(self, key: str, what: str, msg: str, *args: object) -> None:
        self.asked.append(("note", key, what))


def make_context(tmp_path: Path, *, fs: FolderIO | None = None,
                 **folder: Any) -> tuple[Context, GeminiClient]:
    """A context over ``tmp_path/inbox`` (``folder``: more keys of its [[folders]] table),
    its store in ``tmp_path/state``, clocks that stand still. No HTTP is made: the
    client points at a closed port."""
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    config = parse_config({
        "daemon": {"state_dir": str(tmp_path / "state"), "settle": f"{SETTLE:g}s"},
        "folders": [{"path": str(inbox), **folder}],
    })
    store = Store(tmp_path / "state" / "state.db")
    client = GeminiClient("k", "http://127.0.0.1:9")
    ctx = Context.of(config, store, client, fs=fs, clock=Ticks(WALL), monotonic=Ticks(MONO))
    return ctx, client


@contextmanager
def hung_folder(tmp_path: Path) -> Iterator[Context]:
    """A context whose watched folder stopped answering: a call into it did not return
    within the folder time-out (as on a dead NFS server), so the next ones fail at once."""
    hang, release = threading.Event(), threading.Event()

    def gate(folder: str) -> None:
        if hang.is_set():
            release.wait(10)

    ctx, client = make_context(tmp_path, fs=FolderIO(timeout=0.1, gate=gate))
    inbox = str(tmp_path / "inbox")
    hang.set()
    try:
        with pytest.raises(FolderUnavailable):
            asyncio.run(ctx.fs.call(inbox, os.stat, inbox))
        hang.clear()
        yield ctx
    finally:
        release.set()
        asyncio.run(client.aclose())
        ctx.store.close()


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    context, client = make_context(tmp_path)
    yield context
    asyncio.run(client.aclose())
    context.store.close()


@pytest.fixture
def queue() -> Queue:
    return Queue()
