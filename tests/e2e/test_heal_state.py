"""States that heal (issue 8, rows 1, 3, 6–10, 12): each case against the emulator
over loopback, with injected time. Each test reproduces a state the daemon used
to stay in for ever.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from mediasync.emulator import Emulator, EmulatorConfig, Fault
from mediasync.engine import sweep
from mediasync.engine.dispatch import Engine
from mediasync.gemini import GeminiClient, RetryPolicy
from mediasync.media.samples import png_bytes
from mediasync.store import Store
from tests.helpers import Clock, advance, cli, db_rows, engine_setup, env, write_config

HOUR = 3600.0




Hook = Callable[[httpx.Request], Awaitable[None]]


class HookedTransport(httpx.AsyncBaseTransport):
    """Real HTTP to the emulator; a hook runs after an answer arrived and before the
    client sees it, so a test can act "while the request is in flight" without sleeping."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.hooks: list[tuple[Callable[[httpx.Request], bool], Hook]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        for match, hook in list(self.hooks):
            if match(request):
                await response.aread()
                await hook(request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def is_list(r: httpx.Request) -> bool:
    return r.method == "GET" and r.url.path.endswith("/files")


def is_generate(r: httpx.Request) -> bool:
    return r.url.path.endswith(":generateContent")


def make_engine(
    tmp_path: Path,
    emu: Emulator,
    clock: Clock,
    *,
    once: bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
    **kw: object,
) -> tuple[Engine, Store]:
    config, store = engine_setup(tmp_path, emu.base_url)
    http = httpx.AsyncClient(transport=transport) if transport else None
    # One try per call: the engine's own retry policy is what is under test.
    client = GeminiClient("test-key-heal-state", emu.base_url,
                          retry=RetryPolicy(max_attempts=1), http=http)
    return Engine(config, store, client, once=once, clock=clock, **kw), store  # type: ignore[arg-type]


async def one_pass(engine: Engine) -> None:
    await engine.refresh()
    await engine.scan()
    await engine.run(until_idle=True)
    await engine.sweep()


# -- 1: kill -9 while a sidecar is rewritten ---------------------------------------
_KILLER = """
import os, signal, sys
import mediasync.local.sidecar as s
real = s.write_atomic
def dying(*a, **k):
    if sys.argv[1] == "after":
        real(*a, **k)
    os.kill(os.getpid(), signal.SIGKILL)
s.write_atomic = dying
from mediasync.cli import main
main(["-c", sys.argv[2], "sync"])
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_9_while_a_sidecar_is_rewritten_regenerates_it(tmp_path, when, emu):
    cfg = write_config(tmp_path, emu.base_url)
    photo = tmp_path / "inbox" / "photo.png"
    side = tmp_path / "inbox" / "photo.png.caption.md"
    photo.write_bytes(png_bytes(seed=1))
    assert cli(cfg, "sync").returncode == 0
    old = side.read_text()
    photo.write_bytes(png_bytes(seed=2))  # new bytes: the caption must follow
    killed = subprocess.run([sys.executable, "-c", _KILLER, when, str(cfg)], env=env(),
                            capture_output=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert db_rows(cfg, "SELECT outcome FROM outputs") == [("writing",)]
    gens = emu.stats()["requests"]["generate"]

    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    new = side.read_text()
    assert new != old
    sha = db_rows(cfg, "SELECT sha256 FROM paths")[0][0]
    assert f"sha256 {sha[:8]}" in new  # a caption of the new bytes
    assert db_rows(cfg, "SELECT outcome FROM outputs") == [("written",)]
    # Written before the kill: recognised as ours and current; killed before the write:
    # written from the paid answer the store kept (engine/answers.py). Paid once.
    assert emu.stats()["requests"]["generate"] == gens
    assert cli(cfg, "sync").returncode == 0


# -- 3: a copy that vanishes while PROCESSING --------------------------------------
def test_copy_purged_while_processing_is_uploaded_again(tmp_path):
    clock = Clock()
    with Emulator(EmulatorConfig(port=0, processing_delay=30)) as emu:
        purged: list[str] = []

        async def sleep(seconds: float) -> None:
            # `files purge --yes` runs while the daemon polls the PROCESSING copy.
            if not purged:
                for f in emu.store.files():
                    emu.store.delete(f.id)
                    purged.append(f.id)
            emu.clock.advance(seconds)
            await asyncio.sleep(0)

        engine, store = make_engine(tmp_path, emu, clock, sleep=sleep)
        (tmp_path / "inbox" / "photo.png").write_bytes(png_bytes(seed=3))

        async def scenario() -> None:
            for _ in range(3):
                await one_pass(engine)
                advance(clock, emu, HOUR)
            await engine.client.aclose()

        asyncio.run(scenario())
        assert purged
        c = store.all_contents()[0]
        assert c.next_name is None and c.remote_name not in purged
        assert [f["name"] for f in emu.list_files()] == [c.remote_name]
        assert (tmp_path / "inbox" / "photo.png.caption.md").exists()
        assert emu.stats()["uploads_started"] == 2
        store.close()


# -- 6: a copy going live while the listing is in flight ---------------------------
def test_copy_that_goes_live_during_a_slow_listing_is_not_uploaded_twice(tmp_path, emu):
    clock = Clock()
    transport = HookedTransport()
    engine, store = make_engine(tmp_path, emu, clock, transport=transport)
    for i in range(3):
        (tmp_path / "inbox" / f"p{i}.png").write_bytes(png_bytes(seed=60 + i))

    async def scenario() -> None:
        listed = asyncio.Event()
        release = asyncio.Event()

        async def hold(_: httpx.Request) -> None:
            listed.set()
            await release.wait()

        transport.hooks.append((is_list, hold))
        refresh = asyncio.create_task(engine.refresh())
        await listed.wait()  # the (empty) listing is taken, not yet delivered
        transport.hooks.clear()
        await engine.scan()
        await engine.run(until_idle=True)  # every copy goes live meanwhile
        release.set()
        await refresh
        await one_pass(engine)
        await one_pass(engine)
        await engine.client.aclose()

    asyncio.run(scenario())
    assert emu.stats()["uploads_started"] == 3
    assert len(emu.list_files()) == 3
    assert all(c.remote_name for c in store.all_contents())
    store.close()


# -- 7: minutes of generate errors never fail a sidecar for good -------------------
def test_generate_outage_is_retried_with_capped_backoff_for_ever(tmp_path, emu):
    clock = Clock()
    engine, store = make_engine(tmp_path, emu, clock)
    photo = tmp_path / "inbox" / "photo.png"
    photo.write_bytes(png_bytes(seed=7))
    emu.add_fault(Fault(status=503, match="generate", times=None))

    async def scenario() -> list[float]:
        delays = []
        for _ in range(9):
            await one_pass(engine)
            row = store.get_outputs(str(photo))[".caption.md"]
            assert row.outcome == "failed" and row.retry_at is not None, row
            delays.append(row.retry_at - clock())
            advance(clock, emu, row.retry_at - clock() + 1)
        emu.clear_faults()
        # A 429 that asks for a long wait is waited for, not the end either; what it
        # asks is advice, clamped to an hour (gemini/errors.py MAX_SERVER_DELAY).
        emu.add_fault(Fault(status=429, retry_delay="5400s", match="generate"))
        await one_pass(engine)
        row = store.get_outputs(str(photo))[".caption.md"]
        # At least the clamped hour; at most the backoff's own cap with its jitter, well
        # short of the 5400 s asked.
        assert row.retry_at is not None and 3599 <= row.retry_at - clock() <= HOUR * 1.25 + 1
        advance(clock, emu, row.retry_at - clock() + 1)
        await one_pass(engine)
        await engine.client.aclose()
        return delays

    delays = asyncio.run(scenario())
    assert delays[1] > delays[0] * 1.2  # growing
    assert max(delays) <= HOUR * 1.25 and delays[-1] >= HOUR * 0.5  # capped near an hour
    assert (tmp_path / "inbox" / "photo.png.caption.md").exists()
    assert store.get_outputs(str(photo))[".caption.md"].outcome == "written"
    store.close()


# -- 8: a sidecar write that fails is retried ---------------------------------------
def test_sidecar_write_into_read_only_folder_is_retried(tmp_path, emu):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(inbox)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()})")
    try:
        clock = Clock()
        engine, store = make_engine(tmp_path, emu, clock)
        photo = inbox / "photo.png"
        photo.write_bytes(png_bytes(seed=8))
        # Read-only for root too: a remount, not a mode bit.
        subprocess.run(["mount", "-o", "remount,ro", str(inbox)], check=True)

        async def scenario() -> None:
            await one_pass(engine)
            row = store.get_outputs(str(photo))[".caption.md"]
            assert row.outcome == "failed" and row.retry_at is not None, row
            assert "Read-only" in (row.message or "")
            subprocess.run(["mount", "-o", "remount,rw", str(inbox)], check=True)
            await one_pass(engine)  # not before its time
            assert not (inbox / "photo.png.caption.md").exists()
            advance(clock, emu, row.retry_at - clock() + 1)
            await one_pass(engine)
            await engine.client.aclose()

        asyncio.run(scenario())
        assert (inbox / "photo.png.caption.md").exists()
        assert store.get_outputs(str(photo))[".caption.md"].outcome == "written"
        store.close()
    finally:
        subprocess.run(["umount", "-l", str(inbox)], capture_output=True)


# -- 9: a refused renewal never takes away the working copy -------------------------
def test_refused_renewal_keeps_the_working_copy_and_tries_again(tmp_path, emu):
    clock = Clock()
    engine, store = make_engine(tmp_path, emu, clock)
    (tmp_path / "inbox" / "photo.png").write_bytes(png_bytes(seed=9))

    async def scenario() -> None:
        await one_pass(engine)
        first = store.all_contents()[0].remote_name
        advance(clock, emu, 43 * HOUR)  # inside renew_before of the 48 h expiry
        emu.add_fault(Fault(status=400, match="start", message="Bad request."))
        await one_pass(engine)
        c = store.all_contents()[0]
        assert c.remote_name == first and c.retry_at is not None, c
        from mediasync.rules import steps
        assert steps.remote_step(c, clock(), engine.mirror.renew_before) == "renew"
        advance(clock, emu, c.retry_at - clock() + 1)
        await one_pass(engine)
        await engine.refresh()
        await engine.client.aclose()

    asyncio.run(scenario())
    c = store.all_contents()[0]
    assert c.error is None and c.expires_at > clock() + 47 * HOUR
    assert len(emu.list_files()) == 1
    store.close()


# -- 10: renamed or deleted while its sidecar is being generated ---------------------
@pytest.mark.parametrize("move", ["rename", "delete"])
def test_file_moved_during_generation_gets_no_orphan_sidecar(tmp_path, move, emu):
    clock = Clock()
    transport = HookedTransport()
    engine, store = make_engine(tmp_path, emu, clock, transport=transport)
    a = tmp_path / "inbox" / "a.png"
    b = tmp_path / "inbox" / "b.png"
    a.write_bytes(png_bytes(seed=10))

    async def act(_: httpx.Request) -> None:
        transport.hooks.clear()
        if move == "delete":
            a.unlink()
            return
        # As in the daemon: the new name's event is handled while the old
        # name's answer is still on its way.
        a.rename(b)
        engine.mark_dirty(str(b))
        for _ in range(500):
            if store.get_outputs(str(b)):
                break
            await asyncio.sleep(0.01)

    transport.hooks.append((is_generate, act))

    async def scenario() -> None:
        await one_pass(engine)
        await one_pass(engine)
        await engine.client.aclose()

    asyncio.run(scenario())
    assert not (tmp_path / "inbox" / "a.png.caption.md").exists()
    assert [r.path for r in store.all_paths()] == ([str(b)] if move == "rename" else [])
    assert not store.get_outputs(str(a))
    if move == "rename":
        assert (tmp_path / "inbox" / "b.png.caption.md").exists()
    store.close()


# -- 12: deleted files' copies go on time, and the dispatcher does not spin --------
def test_sweep_runs_while_a_slow_task_holds_and_the_loop_sleeps(tmp_path, emu):
    clock = Clock()
    mono = Clock()
    transport = HookedTransport()
    setup, store = make_engine(tmp_path, emu, clock)
    doomed = tmp_path / "inbox" / "doomed.png"
    doomed.write_bytes(png_bytes(seed=12))
    engine, _ = make_engine(tmp_path, emu, clock, once=False, transport=transport,
                            monotonic=mono)

    async def scenario() -> tuple[int, int]:
        await one_pass(setup)
        await setup.client.aclose()
        held = asyncio.Event()
        release = asyncio.Event()

        async def hold(_: httpx.Request) -> None:
            held.set()
            await release.wait()

        transport.hooks.append((is_generate, hold))
        runner = asyncio.create_task(engine.run())
        slow = tmp_path / "inbox" / "slow.png"
        slow.write_bytes(png_bytes(seed=13))
        doomed.unlink()
        engine.mark_dirty(str(slow))
        engine.mark_dirty(str(doomed))
        await asyncio.wait_for(held.wait(), 10)
        for _ in range(100):
            if store.gone_paths():
                break
            await asyncio.sleep(0.01)
        turns = engine.turns
        await asyncio.sleep(0.5)  # a slow task runs; a deletion waits for its grace
        idle_turns = engine.turns - turns
        mono.offset += sweep.grace(engine.config.daemon.settle, once=False) + 1
        engine.mark_dirty(str(tmp_path / "inbox" / "nothing.png"))  # a wake-up; grace over
        for _ in range(300):
            if emu.stats().get("deletes"):
                break
            await asyncio.sleep(0.01)
        deletes = emu.stats().get("deletes", 0)
        release.set()
        await engine.stop()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await engine.client.aclose()
        return deletes, idle_turns

    deletes, idle_turns = asyncio.run(scenario())
    assert deletes == 1  # while the slow generation was still held
    assert idle_turns <= 2
    assert not os.path.exists(doomed)
    store.close()
