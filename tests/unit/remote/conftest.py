"""What the tests of remote/'s parts build them from: a real store in tmp_path, a
RemoteContext on a virtual clock, and contents with a live copy and a file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mediasync.gemini import GeminiClient
from mediasync.local.folderio import FolderIO
from mediasync.remote.context import RemoteContext
from mediasync.rules.rows import PathRow
from mediasync.store import Store
from tests.helpers import VClock
from tests.unit.remote.parts import HOUR, NOWHERE, T0


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[RemoteContext]:
    store = Store(tmp_path / "state" / "state.db")
    clock = VClock(T0)
    client = GeminiClient("k", NOWHERE)
    yield RemoteContext(client=client, store=store, clock=clock, sleep=clock.sleep,
                        fs=FolderIO(), instance="i1", upload_slots=asyncio.Semaphore(1),
                        renew_before=6 * HOUR, jitter=lambda: 0.5)
    asyncio.run(client.aclose())
    store.close()


@pytest.fixture
def add_copy(ctx: RemoteContext, tmp_path: Path) -> Callable[..., str]:
    """``add_copy(sha, expires_at, name=..., live=True)``: a content whose copy
    ``name`` expires then, with a live file in tmp_path/inbox (``live=False``: none)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)

    def add(sha: str, expires_at: float, *, name: str | None = None, live: bool = True) -> str:
        store = ctx.store
        name = name or f"files/{sha[:6]}"
        store.ensure_content(sha, 10, "image/png", "image", T0)
        store.promoted(sha, T0, name, f"{NOWHERE}/v1beta/{name}", expires_at)
        if live:
            path = inbox / f"{sha[:6]}.png"
            path.write_bytes(b"x" * 10)
            st = path.stat()
            store.put_path(PathRow(path=str(path), folder=str(inbox), size=10,
                                   mtime_ns=st.st_mtime_ns, inode=st.st_ino, sha256=sha,
                                   kind="image", mime="image/png", problem=None,
                                   gone_at=None, updated_at=T0))
        return name

    return add
