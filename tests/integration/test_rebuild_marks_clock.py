"""Lose the state, keep the work, in process (issue 18, items 1, 4 and the clock):
damage found in the middle of a pass, sidecar marks on a file system without
extended attributes, a wall clock stepping back. Real HTTP to the emulator."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from mediasync.app import daemon as daemon_module
from mediasync.app.daemon import Daemon
from mediasync.commands.sync import sync
from mediasync.config import load_config, parse_config
from mediasync.emulator import Emulator, Fault
from mediasync.engine.dispatch import Engine
from mediasync.gemini import GeminiClient, RetryPolicy
from mediasync.local import marks
from mediasync.media.samples import png_bytes
from mediasync.remote.adopt import LISTING_GRACE, LISTING_RETRY, WAITING_FOR_LISTING
from mediasync.report import status
from mediasync.store import Meta, Store
from tests.helpers import Clock, advance, damage_db, engine_setup, env, write_config

PROMPT = '[[folders.prompts]]\nkinds = ["image"]\nprompt = "{}"\nsidecar = ".caption.md"\n'


def _setup(tmp_path: Path, emu: Emulator, prompt: str = "Say one.") -> tuple[Path, Path]:
    cfg = write_config(tmp_path, emu.base_url, prompts=PROMPT.format(prompt))
    inbox = tmp_path / "inbox"
    for i in (1, 2):
        (inbox / f"p{i}.png").write_bytes(png_bytes(seed=190 + i))
    return cfg, inbox


def _sync(cfg: Path) -> int:
    return asyncio.run(sync(load_config(cfg), env()))


def _gens(emu: Emulator) -> int:
    return emu.stats()["requests"].get("generate", 0)


def _damage_error(tmp_path: Path) -> sqlite3.DatabaseError:
    """A real SQLITE_CORRUPT, as a page that went bad under a running pass gives."""
    db = tmp_path / "broken.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t(x)")
    con.executemany("INSERT INTO t VALUES (?)", [(str(i) * 50,) for i in range(500)])
    con.commit()
    con.close()
    damage_db(db)
    con = sqlite3.connect(db)
    try:
        con.execute("SELECT * FROM t").fetchall()
    except sqlite3.DatabaseError as e:
        return e
    finally:
        con.close()
    raise AssertionError("not damaged")


def test_damage_found_during_a_pass_is_moved_aside_and_the_pass_runs_again(
        tmp_path, emu, monkeypatch, caplog):
    cfg, inbox = _setup(tmp_path, emu)
    broken = _damage_error(tmp_path)
    real = Store.get_outputs
    failed: list[str] = []

    def get_outputs(self: Store, path: str):
        if not failed:
            failed.append(path)
            raise broken
        return real(self, path)

    monkeypatch.setattr(Store, "get_outputs", get_outputs)
    assert _sync(cfg) == 0
    assert failed
    assert len(list((tmp_path / "state").glob("state.db.damaged-*"))) == 1
    assert all((inbox / f"p{i}.png.caption.md").exists() for i in (1, 2))
    assert emu.stats()["uploads_started"] == 2  # the second pass adopted the first's copies
    assert "unexpected error" not in caplog.text  # one line, no traceback per path


def test_damage_again_on_the_new_database_ends_the_sync_with_one_line(
        tmp_path, emu, monkeypatch, caplog):
    cfg, _ = _setup(tmp_path, emu)
    broken = _damage_error(tmp_path)

    def get_outputs(self: Store, path: str):
        raise broken  # a disk going bad: the new database is damaged too

    monkeypatch.setattr(Store, "get_outputs", get_outputs)
    assert _sync(cfg) == 1  # not 2 (a config error), no traceback; the next run heals
    assert len(list((tmp_path / "state").glob("state.db.damaged-*"))) == 1
    assert "damaged again" in caplog.text
    assert "Traceback" not in caplog.text


def test_a_daemon_damaged_again_and_again_waits_before_each_new_start(
        tmp_path, emu, monkeypatch, caplog):
    cfg, _ = _setup(tmp_path, emu)
    broken = _damage_error(tmp_path)
    scans: list[float] = []

    async def scan(self: Engine) -> int:
        scans.append(time.monotonic())
        raise broken  # every new database is found damaged at once: a disk going bad

    monkeypatch.setattr(Engine, "scan", scan)
    daemon = Daemon(load_config(cfg), cfg, env())

    async def scenario() -> tuple[int, int]:
        task = asyncio.create_task(daemon.run())
        for _ in range(400):
            if "starting again in 5 s" in caplog.text:
                break
            await asyncio.sleep(0.05)
        # Turns of the loop, no wall time: a start not held back by the wait would
        # reach scan (its first await) within them.
        for _ in range(100):
            await asyncio.sleep(0)
        started = len(scans)
        daemon.terminate()  # SIGTERM while it waits: it stops at once
        return started, await asyncio.wait_for(task, 30)

    started, code = asyncio.run(scenario())
    assert code == 0
    assert started == 2  # the first rebuild at once, the next one waits (no tight loop)
    assert len(list((tmp_path / "state").glob("state.db.damaged-*"))) == 1


def test_without_extended_attributes_a_rebuild_still_knows_its_sidecars(
        tmp_path, emu, monkeypatch):
    def refuse(*_a, **_k):
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", refuse)
    monkeypatch.setattr(os, "getxattr", refuse)
    cfg, inbox = _setup(tmp_path, emu)
    assert _sync(cfg) == 0
    assert (inbox / marks.MARKS_FILE).exists()
    (inbox / "p2.png.caption.md").write_text("my own words\n")
    for side in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'state' / 'state.db'}{side}").unlink(missing_ok=True)
    gens = _gens(emu)
    cfg = write_config(tmp_path, emu.base_url, prompts=PROMPT.format("Say two."))
    assert _sync(cfg) == 0
    assert "Say two." in (inbox / "p1.png.caption.md").read_text()  # ours: regenerated
    assert (inbox / "p2.png.caption.md").read_text() == "my own words\n"  # the owner's
    assert _gens(emu) == gens + 1
    assert emu.stats()["uploads_started"] == 2


class Monotonic:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def test_wall_clock_stepping_back_does_not_delay_a_retry(tmp_path, emu):
    clock, mono = Clock(), Monotonic()
    config, store = engine_setup(tmp_path, emu.base_url)
    client = GeminiClient("test-key-clock", emu.base_url, retry=RetryPolicy(max_attempts=1),
                          http=httpx.AsyncClient())
    engine = Engine(config, store, client, once=True, clock=clock, monotonic=mono)
    (tmp_path / "inbox" / "p.png").write_bytes(png_bytes(seed=199))
    side = tmp_path / "inbox" / "p.png.caption.md"
    emu.add_fault(Fault(status=503, match="generate", times=1))

    async def one_pass() -> None:
        await engine.scan()
        await engine.run(until_idle=True)

    async def scenario() -> None:
        await engine.refresh()
        await one_pass()
        (row,) = store.get_outputs(str(tmp_path / "inbox" / "p.png")).values()
        assert row.outcome == "failed" and row.retry_at is not None  # waits ~30 s
        wait = row.retry_at - clock()
        clock.offset -= 3600  # NTP steps the wall clock back an hour
        mono.offset += wait + 1  # and the retry's wait passes
        await one_pass()
        await client.aclose()

    asyncio.run(scenario())
    assert side.exists()  # retried when due, not an hour later
    store.close()


@pytest.mark.parametrize("step", [1.0, -7200.0])
def test_a_small_drift_or_a_step_forward_moves_no_retry_time(tmp_path, emu, step):
    clock, mono = Clock(), Monotonic()
    config, store = engine_setup(tmp_path, emu.base_url)
    client = GeminiClient("k", emu.base_url)
    engine = Engine(config, store, client, once=True, clock=clock, monotonic=mono)
    clock.offset -= step  # 1 s back: drift; 2 h forward: no retry comes late
    assert engine.clock_check() == 0.0
    asyncio.run(client.aclose())
    store.close()


def test_a_step_found_by_a_paths_look_still_reaches_the_daemons_check(tmp_path, emu):
    # A busy daemon's reconciles look at the clock too; the step they find must still
    # reach the daemon's check, which plans its scheduled jobs again from now.
    clock, mono = Clock(), Monotonic()
    config, store = engine_setup(tmp_path, emu.base_url)
    client = GeminiClient("k", emu.base_url)
    engine = Engine(config, store, client, once=True, clock=clock, monotonic=mono)
    (tmp_path / "inbox" / "p.png").write_bytes(png_bytes(seed=198))

    async def scenario() -> None:
        await engine.refresh()
        await engine.scan()
        clock.offset -= 3600  # NTP steps the wall clock back an hour
        await engine.run(until_idle=True)  # a path's reconcile finds the step first
        await client.aclose()

    asyncio.run(scenario())
    assert engine.clock_check() == pytest.approx(3600, abs=60)
    assert engine.clock_check() == 0.0  # told once
    store.close()


def test_a_rebuild_stays_pending_while_a_folder_is_away(tmp_path, emu):
    # The files of a folder that is unavailable are not met yet: their copies are not
    # leftovers to delete (and upload again when the folder is back).

    away = tmp_path / "card"  # not there: an unmounted card's mount point is gone too
    (tmp_path / "inbox").mkdir()
    config = parse_config({
        "api": {"base_url": emu.base_url},
        "daemon": {"state_dir": str(tmp_path / "state"), "settle": "0s",
                   "requests_per_minute": 6000},
        "folders": [{"path": str(tmp_path / "inbox")}, {"path": str(away)}]})
    store = Store(tmp_path / "state" / "state.db")
    store.write(Meta.RECOVERY, {"at": 1.0, "what": "rebuilt", "pending": True})
    client = GeminiClient("k", emu.base_url)
    engine = Engine(config, store, client, once=True)

    async def one_pass() -> None:
        await asyncio.gather(engine.refresh(), engine.scan())  # as `sync` and the daemon
        await engine.run(until_idle=True)

    async def scenario() -> None:
        await one_pass()
        assert store.read(Meta.RECOVERY)["pending"] is True
        away.mkdir()  # back
        await one_pass()
        await client.aclose()

    asyncio.run(scenario())
    assert store.read(Meta.RECOVERY)["pending"] is False
    store.close()


def test_a_rebuilt_database_uploads_nothing_until_it_has_read_a_listing(tmp_path, emu):
    # The database is lost and its start-up listing fails: the files wait for one
    # (saying so), instead of uploading the whole library again; when a listing comes,
    # their copies are adopted. A listing that keeps failing holds them 30 min at most.

    cfg, inbox = _setup(tmp_path, emu)
    assert _sync(cfg) == 0
    uploads = emu.stats()["uploads_started"]
    state = tmp_path / "state"
    old = Store(state / "state.db")
    instance = old.read(Meta.INSTANCE_ID)
    old.close()
    for f in state.glob("state.db*"):
        f.unlink()
    for p in inbox.glob("*.caption.md"):
        p.unlink()  # both captions asked again: each needs its copy

    config = load_config(cfg)
    store = Store(state / "state.db")
    store.write(Meta.INSTANCE_ID, instance)
    store.write(Meta.RECOVERY, {"at": 1.0, "what": "rebuilt", "pending": True})
    clock = Clock()
    client = GeminiClient("k", emu.base_url, retry=RetryPolicy(max_attempts=1))

    async def sleep(seconds: float) -> None:
        advance(clock, emu, seconds)
        await asyncio.sleep(0)

    engine = Engine(config, store, client, once=True, clock=clock, sleep=sleep)

    async def one_pass() -> bool:
        listed, _ = await asyncio.gather(engine.refresh(), engine.scan())
        await engine.run(until_idle=True)
        return listed

    def states() -> set[tuple[str, str | None]]:
        return {(r.state, r.message) for r in status.build(store, config, clock())}

    async def scenario() -> None:
        emu.add_fault(Fault(kind="status", status=503, match="list", times=None))
        assert not await one_pass()
        assert emu.stats()["uploads_started"] == uploads  # nothing sent again
        ((state_, message),) = states()
        assert state_ == "waiting" and WAITING_FOR_LISTING in message
        emu.clear_faults()
        advance(clock, emu, LISTING_RETRY)
        assert await one_pass()
        assert emu.stats()["uploads_started"] == uploads  # adopted, not uploaded
        assert states() == {("synced", None)}
        assert _gens(emu) == 4  # each caption asked again once, its copy adopted
        await client.aclose()

    asyncio.run(scenario())
    store.close()


def test_a_listing_that_keeps_failing_holds_a_rebuilds_uploads_for_a_while_only(tmp_path, emu):

    cfg, inbox = _setup(tmp_path, emu)
    config = load_config(cfg)
    store = Store(tmp_path / "state" / "state.db")
    store.write(Meta.RECOVERY, {"at": 1.0, "what": "rebuilt", "pending": True})
    clock = Clock()
    client = GeminiClient("k", emu.base_url, retry=RetryPolicy(max_attempts=1))
    engine = Engine(config, store, client, once=True, clock=clock)
    emu.add_fault(Fault(kind="status", status=503, match="list", times=None))

    async def one_pass() -> None:
        await asyncio.gather(engine.refresh(), engine.scan())
        await engine.run(until_idle=True)

    async def scenario() -> None:
        await one_pass()
        assert emu.stats()["uploads_started"] == 0
        advance(clock, emu, LISTING_GRACE + 1)
        await one_pass()
        assert emu.stats()["uploads_started"] == 2  # the library reaches the service
        assert all(p.with_name(p.name + ".caption.md").exists()
                   for p in inbox.glob("p*.png"))
        await client.aclose()

    asyncio.run(scenario())
    store.close()


def test_a_daemon_whose_listing_failed_lists_again_within_minutes(tmp_path, emu,
                                                                   monkeypatch):
    # Not at the next refresh_every (6 h): a rebuilt database uploads nothing until it
    # has read a listing.

    def one_try(*args, **kwargs):  # the listing's in-call retries would really wait
        client = make_client(*args, **kwargs)
        client.retry = RetryPolicy(max_attempts=1)
        return client

    make_client = daemon_module.make_client
    monkeypatch.setattr(daemon_module, "make_client", one_try)
    cfg, _ = _setup(tmp_path, emu)
    emu.add_fault(Fault(kind="status", status=503, match="list", times=None))
    daemon = Daemon(load_config(cfg), cfg, env())

    async def scenario() -> tuple[float | None, int]:
        task = asyncio.create_task(daemon.run())
        job = None
        for _ in range(400):
            job = getattr(daemon, "scheduler", None) and daemon.scheduler.get_job("refresh-again")
            if job is not None:
                break
            await asyncio.sleep(0.05)
        planned = job.next_run_time.timestamp() - time.time() if job else None
        daemon.terminate()
        return planned, await asyncio.wait_for(task, 30)

    planned, code = asyncio.run(scenario())
    assert code == 0
    assert planned is not None and 0 < planned <= daemon_module.REFRESH_AGAIN
