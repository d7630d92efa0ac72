"""The server's listing is the truth: a recorded copy it lacks is gone, its expiry
times are taken over, and this instance's leftovers are doomed. Against the emulator
over loopback; the rule itself (ownership.plan_refresh) has its own tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import httpx

from mediasync.gemini import GeminiClient
from mediasync.media.samples import png_bytes
from mediasync.remote.refresh import Refresher
from mediasync.rules.ownership import display_name
from tests.unit.remote.parts import HOUR, T0

A, B, D = ("a" * 64, "b" * 64, "d" * 64)


async def _upload(client: GeminiClient, tmp_path: Path, sha: str, instance: str) -> str:
    """A remote file named as ``instance``'s copy of content ``sha``."""
    path = tmp_path / f"{sha[:4]}-{instance}.png"
    path.write_bytes(png_bytes(seed=len(list(tmp_path.iterdir()))))
    f = await client.upload(path, "image/png", display_name(sha, path.name, instance))
    return f.name


def _refresher(ctx, kept: Callable[[str], bool] = lambda sha: True) -> tuple[Refresher, list]:
    asked: list[int] = []

    def renew_due() -> int:
        asked.append(1)
        return 0

    return Refresher(ctx, keeps_alive=kept, renew_due=renew_due), asked


def test_the_listing_decides_vanished_copies_expiries_and_leftovers(ctx, add_copy, emu,
                                                                    tmp_path, caplog) -> None:
    refresher, asked = _refresher(ctx, kept=lambda sha: sha != D)

    async def go() -> tuple[list[str], str, str, str]:
        async with GeminiClient("k", emu.base_url) as client:
            ctx.client = client
            listed = await _upload(client, tmp_path, B, "i1")
            mine = await _upload(client, tmp_path, "e" * 64, "i1")  # this instance's leftover
            theirs = await _upload(client, tmp_path, "f" * 64, "i2")  # another instance's
            add_copy(A, T0 + 20 * HOUR, name="files/gone")
            add_copy(B, T0 + 20 * HOUR, name=listed)
            add_copy(D, T0 + 20 * HOUR, name="files/lapsed")
            return await refresher.refresh(), listed, mine, theirs

    with caplog.at_level(logging.DEBUG, "mediasync"):
        vanished, listed, mine, theirs = asyncio.run(go())

    assert sorted(vanished) == [A, D]
    assert ctx.store.get_content(A).remote_name is None  # uploaded again on next look
    assert ctx.store.get_content(B).expires_at != T0 + 20 * HOUR  # the server's time
    assert ctx.store.get_content(B).remote_name == listed
    assert ctx.store.doomed() == [mine] and theirs not in ctx.store.doomed()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"the remote copy of {A[:6]}.png is gone; uploading again"]
    assert f"the remote copy of {D[:6]}.png lapsed" in caplog.text  # expected: no warning
    assert asked == [1]  # the expiry times taken over may call for renewals


def test_a_copy_made_while_the_listing_is_on_its_way_is_not_vanished(ctx, add_copy,
                                                                      emu) -> None:
    add_copy(A, T0 + 20 * HOUR, name="files/old")  # not listed: gone, as the listing says

    async def promote_meanwhile(request: httpx.Request) -> None:
        # The database changes after the snapshot, before the answer arrives.
        ctx.store.promoted(A, T0, "files/new", "u", T0 + 48 * HOUR)

    refresher, _ = _refresher(ctx)

    async def go() -> list[str]:
        http = httpx.AsyncClient(event_hooks={"request": [promote_meanwhile]})
        async with GeminiClient("k", emu.base_url, http=http) as client:
            ctx.client = client
            return await refresher.refresh()

    vanished = asyncio.run(go())
    assert vanished == []
    assert ctx.store.get_content(A).remote_name == "files/new"  # left to the next refresh
