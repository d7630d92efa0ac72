"""While an unneeded content is still uploading, the sweep waits for it without
re-sending every refused delete once a second."""

from __future__ import annotations

import asyncio

from mediasync.emulator import Fault
from mediasync.engine.context import Context
from mediasync.engine.dispatch import Engine
from mediasync.engine.sweep import BUSY_WAIT, Sweeper
from mediasync.gemini import GeminiClient
from tests.helpers import engine_setup


def test_a_busy_resweep_does_not_resend_refused_deletes(emu, tmp_path):
    config, store = engine_setup(tmp_path, emu.base_url)
    emu.add_fault(Fault(status=400, match="delete", times=None))  # refused, for good
    mono = [1000.0]
    sha = "b" * 64

    def deletes() -> int:
        return emu.stats()["requests"].get("delete", 0)

    async def main() -> None:
        client = GeminiClient("k", emu.base_url)
        engine = Engine(config, store, client)  # for its mirror
        mirror = engine.mirror
        ctx = Context.of(config, store, client, fs=engine.fs, monotonic=lambda: mono[0])
        sweeper = Sweeper(ctx, busy=mirror.busy, retire=mirror.retire,
                          delete_doomed=mirror.delete_doomed, wake=lambda: None)
        store.ensure_content(sha, 10, "image/png", "image", 0.0)  # no file needs it
        store.doom("files/refused", "no longer needed", 0.0)
        uploading, release = asyncio.Event(), asyncio.Event()

        async def upload() -> None:
            async with engine.mirror.lock(sha):
                uploading.set()
                await release.wait()

        holder = asyncio.create_task(upload())
        await uploading.wait()

        async def sweep_when_due() -> None:
            assert sweeper.start_if_due(mono[0], blocked=False) is None
            assert sweeper.running
            await sweeper.join()

        try:
            sweeper.soon(0.0)
            await sweep_when_due()  # a full sweep: the refused delete is tried once
            assert deletes() == 1
            for _ in range(5):  # the content still uploads: the sweep comes back…
                assert sweeper.at == mono[0] + BUSY_WAIT
                mono[0] += BUSY_WAIT
                await sweep_when_due()
            assert deletes() == 1  # …but leaves the refused delete to its own retries
            assert store.get_content(sha) is not None
            release.set()
            await holder
            mono[0] += BUSY_WAIT
            await sweep_when_due()
            assert store.get_content(sha) is None  # retired once its upload ended
            assert sweeper.at is None
            sweeper.soon(0.0)
            await sweep_when_due()  # any other sweep tries every doomed file again
            assert deletes() == 2
        finally:
            release.set()
            await holder
            await client.aclose()
            store.close()

    asyncio.run(main())
