"""The API traffic /metrics counts (app/traffic.py), through httpx's event hooks on a real
client talking to the emulator: uploads and their bytes, the last listing, 429s by quota,
failed generations by model."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mediasync.app.traffic import TrafficCounter
from mediasync.emulator import Emulator, EmulatorConfig, Fault
from mediasync.gemini import ApiError, GeminiClient, RetryPolicy
from mediasync.media.samples import png_bytes


async def _no_sleep(_: float) -> None:
    return None


def test_uploads_listing_refusals_and_failures_are_counted(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(png_bytes(seed=91))
    counter = TrafficCounter()
    with Emulator(EmulatorConfig(port=0)) as emu:
        emu.add_fault(Fault(kind="status", status=429, quota="per_minute", match="generate"))
        emu.add_fault(Fault(kind="status", status=429, quota="per_day+input_tokens",
                            match="generate"))
        emu.add_fault(Fault(kind="status", status=429, quota="bare", match="generate"))
        emu.add_fault(Fault(kind="status", status=400, match="generate", times=None,
                            message="bad request"))

        async def go() -> None:
            http = httpx.AsyncClient(event_hooks=counter.hooks())
            client = GeminiClient("key", emu.base_url, http=http,
                                  retry=RetryPolicy(max_attempts=1, sleep=_no_sleep))
            async with client:
                f = await client.upload(png, "image/png", "mediasync:test:a.png")
                await client.list_files()
                for _ in range(4):
                    with pytest.raises(ApiError):
                        await client.generate("gemini-2.5-flash", file_uri=f.uri or "",
                                              mime_type="image/png", prompt="?")

        asyncio.run(go())
    t = counter.traffic
    assert t.uploads == 1 and t.upload_bytes == png.stat().st_size
    assert t.last_listing is not None and t.last_api_success is not None
    assert dict(t.refusals) == {("gemini-2.5-flash", "rpm"): 1, ("gemini-2.5-flash", "rpd"): 1,
                                ("gemini-2.5-flash", "tpm"): 1,
                                ("gemini-2.5-flash", "unnamed"): 1}
    assert dict(t.generations) == {("gemini-2.5-flash", "refused"): 3,
                                   ("gemini-2.5-flash", "error"): 1}
