"""End-to-end: the real `mediasync run` daemon, fed by the file watcher."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from mediasync.emulator import Emulator, EmulatorConfig, Fault
from mediasync.media.samples import png_bytes, wav_bytes
from tests.helpers import Running, cli, wait_for, write_config


@pytest.fixture
def emu():
    e = Emulator(EmulatorConfig(port=0, processing_delay=0.05)).start()
    yield e
    e.stop()


@pytest.fixture
def daemon(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url, daemon={"settle": "300ms"})
    d = Running(cfg)
    yield d
    assert d.stop() == 0, d.log()


def _inbox(d: Running) -> Path:
    return d.log_path.parent / "inbox"


def test_files_dropped_by_copy_rename_and_slow_writing(daemon, emu, tmp_path):
    inbox = _inbox(daemon)
    src = tmp_path / "src.png"
    src.write_bytes(png_bytes(seed=31))
    shutil.copy(src, inbox / "copied.png")
    tmp = inbox / ".incoming.png.part"
    tmp.write_bytes(png_bytes(seed=32))
    os.rename(tmp, inbox / "renamed.png")
    # A slow writer pausing less than `settle` for over three times `settle`: taking
    # the file early would upload a partial copy (a second finalize, below).
    data = wav_bytes(1.0)
    with open(inbox / "slow.wav", "wb") as f:
        for i in range(0, len(data), 4096):
            f.write(data[i : i + 4096])
            f.flush()
            time.sleep(0.12)
    for name in ("copied.png.caption.md", "renamed.png.caption.md", "slow.wav.transcript.txt"):
        wait_for(lambda n=name: (inbox / n).exists(), what=name, proc=daemon.proc)
    # The slow file was uploaded once, whole: the emulator holds 3 files, none FAILED.
    assert emu.stats()["uploads_finalized"] == 3
    assert "audio/wav, 1.0 s" in (inbox / "slow.wav.transcript.txt").read_text()
    # write_atomic links the temp file to the sidecar's name, then unlinks it: a
    # sidecar may be seen a moment before its temp file is gone, but not for long.
    wait_for(lambda: not list(inbox.glob(".mediasync-tmp-*")), timeout=5,
             what="temp files removed", proc=daemon.proc)


def test_rename_and_delete_while_running(daemon, emu):
    inbox = _inbox(daemon)
    (inbox / "a.png").write_bytes(png_bytes(seed=33))
    wait_for(lambda: (inbox / "a.png.caption.md").exists(), what="caption", proc=daemon.proc)
    gens = emu.stats()["requests"]["generate"]
    os.rename(inbox / "a.png", inbox / "b.png")
    wait_for(lambda: (inbox / "b.png.caption.md").exists(), what="moved caption", proc=daemon.proc)
    assert not (inbox / "a.png.caption.md").exists()
    assert emu.stats()["requests"]["generate"] == gens
    assert emu.stats()["uploads_started"] == 1
    (inbox / "b.png").unlink()
    wait_for(lambda: emu.stats()["live_files"] == 0, what="remote delete", proc=daemon.proc)
    assert (inbox / "b.png.caption.md").exists()


def test_sighup_reloads_config_without_restart(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url, daemon={"settle": "200ms"})
    d = Running(cfg)
    try:
        other = tmp_path / "other"
        other.mkdir()
        text = cfg.read_text().replace(str(tmp_path / "inbox"), str(other))
        cfg.write_text(text)
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in d.log(), what="reload", proc=d.proc)
        (other / "x.png").write_bytes(png_bytes(seed=34))
        wait_for(lambda: (other / "x.png.caption.md").exists(), what="caption", proc=d.proc)
        # A broken config on reload is refused and the daemon keeps running.
        cfg.write_text(text + "\n[daemon.nope]\n")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload failed" in d.log(), what="refused reload", proc=d.proc)
        assert d.proc.poll() is None
    finally:
        assert d.stop() == 0, d.log()


def test_sigint_exits_zero(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url)
    d = Running(cfg)
    assert d.stop(signal.SIGINT) == 0


def test_sd_notify_protocol_and_status_while_running(tmp_path, emu):
    import socket

    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.1)
    got: list[str] = []

    def received(text: str) -> bool:
        try:
            while True:
                got.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
        return any(text in m for m in got)

    cfg = write_config(tmp_path, emu.base_url, daemon={"settle": "100ms"})
    (tmp_path / "inbox" / "photo.png").write_bytes(png_bytes(seed=35))
    d = Running(cfg, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="400000")
    try:
        wait_for(lambda: received("READY=1"), what="READY=1", proc=d.proc)
        ready = next(m for m in got if "READY=1" in m)
        assert "STATUS=watching 1 folder" in ready
        wait_for(lambda: received("WATCHDOG=1"), what="WATCHDOG=1", proc=d.proc)
        wait_for(lambda: (tmp_path / "inbox" / "photo.png.caption.md").exists(), what="caption")
        wait_for(lambda: received("1 synced"), what="STATUS update", proc=d.proc)
        # status reads the state while the daemon holds it
        r = cli(cfg, "status")
        assert r.returncode == 0 and "photo.png: synced" in r.stdout
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: received("RELOADING=1"), what="RELOADING=1", proc=d.proc)
        assert d.stop() == 0
        assert received("STOPPING=1")
    finally:
        d.stop()
        sock.close()


def test_an_idle_copy_is_renewed_without_a_listing(tmp_path):
    """Renewals come from the recorded expiry, not from the hours-apart listing."""
    # The copy enters its renewal window 8 s after upload, long before it stops
    # being usable (2 minutes before expiry); the listing runs only at start.
    with Emulator(EmulatorConfig(port=0, ttl=208.0)) as emu:
        cfg = write_config(tmp_path, emu.base_url,
                           daemon={"settle": "100ms", "refresh_every": "6h",
                                   "renew_before": "200s"})
        (tmp_path / "inbox" / "photo.png").write_bytes(png_bytes(seed=36))
        d = Running(cfg)
        try:
            wait_for(lambda: (tmp_path / "inbox" / "photo.png.caption.md").exists(),
                     what="caption", proc=d.proc)
            gens = emu.stats()["requests"]["generate"]
            # Renewed (and renewed again: this short-lived copy is due every 8 s),
            # and each replaced copy deleted at once, not at the next listing.
            wait_for(lambda: emu.stats()["uploads_finalized"] >= 2 and
                     emu.stats()["live_files"] == 1, timeout=40, what="renewal", proc=d.proc)
            assert emu.stats()["requests"]["generate"] == gens  # renewals rerun no prompt
            assert emu.stats()["requests"].get("list", 0) == 1
        finally:
            assert d.stop() == 0, d.log()
        assert "renewing 1 remote copies" in d.log()


def test_sigterm_during_a_listing_logs_no_traceback(tmp_path):
    """A job cut off by shutdown ends silently (bench/days.py found an APScheduler
    traceback for every stop that came mid-listing)."""
    with Emulator(EmulatorConfig(port=0)) as emu:
        cfg = write_config(tmp_path, emu.base_url, daemon={"refresh_every": "1s"})
        d = Running(cfg)
        emu.add_fault(Fault(kind="slow", delay=3.0, match="list", times=None))
        try:
            wait_for(lambda: emu.stats()["requests"].get("list", 0) >= 2,
                     what="a listing in flight", proc=d.proc)
        finally:
            assert d.stop() == 0, d.log()
        assert "Traceback" not in d.log()
