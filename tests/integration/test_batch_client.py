"""GeminiClient's batch calls against the emulator over loopback (no HTTP mocks)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediasync.emulator import Emulator, EmulatorConfig, Fault
from mediasync.gemini import ApiError, GeminiClient, RetryPolicy, TransportError, parse_results
from mediasync.gemini.batches import JSONL_MIME
from mediasync.media.samples import png_bytes


@pytest.fixture()
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(batch_pending=5, batch_duration=20)) as e:
        yield e


def _client(emu: Emulator) -> GeminiClient:
    quick = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)
    return GeminiClient("k", emu.base_url, retry=quick)


def test_file_job_round_trip_by_key(emu: Emulator, tmp_path: Path) -> None:
    async def go() -> None:
        async with _client(emu) as c:
            img = tmp_path / "a.png"
            img.write_bytes(png_bytes(32, 32))
            f = await c.upload(img, "image/png")
            req = c.generate_request(f.uri, "image/png", "say hi", None, None)
            src = tmp_path / "in.jsonl"
            src.write_text(json.dumps({"key": "o1", "request": req}) + "\n")
            jf = await c.upload(src, JSONL_MIME)
            job = await c.create_batch("gemini-2.5-flash", "mediasync-batch:abc",
                                       file_name=jf.name)
            assert job.state == "PENDING" and job.display_name == "mediasync-batch:abc"
            assert [j.name for j in await c.list_batches()] == [job.name]
            emu.clock.advance(21)
            done = await c.get_batch(job.name)
            assert done.state == "SUCCEEDED" and done.responses_file
            results = parse_results(await c.download(done.responses_file))
            assert results.answers["o1"].text.endswith("say hi”") and not results.unreadable
            await c.delete_batch(job.name)
            with pytest.raises(ApiError) as e:
                await c.get_batch(job.name)
            assert e.value.code == 404
    asyncio.run(go())


def test_create_is_never_retried_in_the_call(emu: Emulator) -> None:
    async def go() -> None:
        async with _client(emu) as c:
            emu.add_fault(Fault(kind="lost_answer"))
            with pytest.raises(TransportError):
                await c.create_batch("gemini-2.5-flash", "k", requests=[{"contents": [
                    {"parts": [{"text": "x"}]}]}])
            assert emu.batches.created == 1  # made once, not again by a retry
            emu.add_fault(Fault(status=503, match="batch.create"))
            with pytest.raises(ApiError) as e:
                await c.create_batch("gemini-2.5-flash", "k2", requests=[{"contents": [
                    {"parts": [{"text": "x"}]}]}])
            assert e.value.code == 503 and emu.batches.created == 1
            # A poll is retried in the call: it changes nothing.
            (job,) = await c.list_batches()
            emu.add_fault(Fault(status=503, match="batch.get"))
            assert (await c.get_batch(job.name)).name == job.name
            await c.cancel_batch(job.name)
            assert (await c.get_batch(job.name)).state == "CANCELLED"
    asyncio.run(go())
