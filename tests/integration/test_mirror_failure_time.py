"""An upload that fails is judged at the time it failed, not when it started: after a
long upload the backoff (or the storage wait) still lies ahead."""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from mediasync.emulator import Emulator, EmulatorConfig, Fault
from mediasync.engine.dispatch import Engine
from mediasync.gemini import GeminiClient, RetryPolicy
from mediasync.media.samples import png_bytes
from mediasync.rules.failures import ContentUnavailable
from tests.helpers import engine_setup

HOUR = 3600.0


def test_the_retry_time_counts_from_the_failure(tmp_path) -> None:
    with Emulator(EmulatorConfig(port=0)) as emu:
        config, store = engine_setup(tmp_path, emu.base_url)
        photo = tmp_path / "inbox" / "a.png"
        photo.write_bytes(png_bytes(seed=3))
        emu.add_fault(Fault(status=503, match="start", times=None))
        t0 = 1_900_000_000.0
        sent = []

        def clock() -> float:  # an hour passes once the upload is under way
            return t0 + HOUR if sent else t0

        async def on_request(request: httpx.Request) -> None:
            sent.append(request.url)

        async def go() -> None:
            http = httpx.AsyncClient(event_hooks={"request": [on_request]})
            client = GeminiClient("k", emu.base_url, retry=RetryPolicy(max_attempts=1),
                                  http=http)
            engine = Engine(config, store, client, once=True, clock=clock)
            store.ensure_content("s" * 64, 10, "image/png", "image", t0)
            store.put_path(_row(photo, str(config.folders[0].path)))
            with contextlib.suppress(ContentUnavailable):  # recorded on the row
                await engine.mirror.make_copy(store.get_content("s" * 64))
            await client.aclose()

        asyncio.run(go())
        c = store.get_content("s" * 64)
        store.close()
    assert c.retry_at is not None and c.retry_at > t0 + HOUR


def _row(photo, folder):
    from mediasync.rules.rows import PathRow
    st = photo.stat()
    return PathRow(path=str(photo), folder=folder, size=st.st_size, mtime_ns=st.st_mtime_ns,
                   inode=st.st_ino, sha256="s" * 64, kind="image", mime="image/png",
                   problem=None, gone_at=None, updated_at=0.0)
