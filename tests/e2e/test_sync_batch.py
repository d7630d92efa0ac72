"""End-to-end: the real `mediasync sync` and `status` with [batch] against the emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediasync.emulator import Emulator, EmulatorConfig, Fault
from mediasync.media.samples import png_bytes
from tests.helpers import cli, env, kill9, wait_for, write_config

ALWAYS = '[folders.batch]\nmode = "always"'


@pytest.fixture()
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(batch_pending=0.3, batch_duration=1.0)) as e:
        yield e


def _setup(tmp_path: Path, emu: Emulator, n: int, extra: str = ALWAYS) -> tuple[Path, list[Path]]:
    cfg = write_config(tmp_path, emu.base_url, folder_extra=extra)
    imgs = []
    for i in range(n):
        p = tmp_path / "inbox" / f"p{i}.png"
        p.write_bytes(png_bytes(seed=100 + i))
        imgs.append(p)
    return cfg, imgs


def _written(imgs: list[Path]) -> bool:
    return all(p.with_name(p.name + ".caption.md").exists() for p in imgs)


def test_sync_always_waits_for_the_job_with_progress(tmp_path, emu) -> None:
    cfg, imgs = _setup(tmp_path, emu, 3)
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert _written(imgs)
    assert emu.batches.created == 1 and "generate" not in emu.stats()["requests"]
    assert "BATCH: batches/" in r.stderr and "3 outputs" in r.stderr
    assert "[batch]" in cli(cfg, "status").stdout  # the tier that wrote each sidecar


def test_no_wait_records_the_job_exits_6_status_shows_it_next_sync_collects(
        tmp_path, emu) -> None:
    cfg, imgs = _setup(tmp_path, emu, 2)
    emu.batches.duration = 3600  # still open when status looks
    r = cli(cfg, "sync", "--no-wait")
    assert r.returncode == 6, r.stderr
    assert not _written(imgs) and emu.batches.created == 1
    # Waiting for a job is no failure: one line, not an error per file.
    assert "2 file(s) wait for a batch job" in r.stderr and " ERROR " not in r.stderr
    text = cli(cfg, "status").stdout
    assert "BATCH: batches/" in text and "2 outputs" in text and "max_wait" in text
    for p in imgs:
        assert f"{p.name}.caption.md: waiting (in batch job batches/" in text
    doc = json.loads(cli(cfg, "status", "--json").stdout)
    (job,) = doc["batch_jobs"]
    assert job["outputs"] == 2 and job["state"] in ("PENDING", "RUNNING")
    assert job["progress"] == f"{job['done']}/2 done" and job["age"] >= 0
    sidecars = [s for f in doc["files"] for s in f["sidecars"]]
    assert all(s["outcome"] == "waiting" and "batch job" in s["message"] for s in sidecars)
    emu.clock.advance(3600)
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert _written(imgs) and emu.batches.created == 1
    assert "generate" not in emu.stats()["requests"]
    assert json.loads(cli(cfg, "status", "--json").stdout)["batch_jobs"] == []


def test_kill_9_while_waiting_for_a_job_creates_no_second_job(tmp_path, emu) -> None:
    cfg, imgs = _setup(tmp_path, emu, 3)
    emu.batches.duration = 3600
    proc = subprocess.Popen([sys.executable, "-m", "mediasync", "-c", str(cfg), "sync"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    wait_for(lambda: emu.stats()["requests"].get("batch.get"), what="a poll", proc=proc)
    kill9(proc)
    emu.clock.advance(3600)
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert _written(imgs) and emu.batches.created == 1
    assert "generate" not in emu.stats()["requests"]


def test_auto_below_min_outputs_stays_interactive(tmp_path, emu) -> None:
    cfg, imgs = _setup(tmp_path, emu, 2, '[folders.batch]\nmode = "auto"\nmin_outputs = 3')
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert _written(imgs) and emu.batches.created == 0
    assert emu.stats()["requests"]["generate"] == 2


def test_faults_nothing_lost_or_paid_twice(tmp_path, emu) -> None:
    """A lost create answer (adopted), a failing poll, a results download that fails
    for a while, and a results line that does not parse (that output goes interactive)."""
    cfg, imgs = _setup(tmp_path, emu, 4)
    emu.add_fault(Fault(kind="lost_answer"))
    emu.add_fault(Fault(status=503, match="batch.get", times=2))
    emu.add_fault(Fault(status=500, match="download", times=6))
    emu.batches.bad_lines = 1
    r = cli(cfg, "sync", timeout=180)
    assert r.returncode == 0, r.stderr
    assert _written(imgs)
    assert emu.batches.created == 1  # the lost create was adopted, not repeated
    assert emu.stats()["requests"]["generate"] == 1  # only the unreadable line's output
    assert "adopted" in r.stderr


def test_job_deleted_by_another_tool_outputs_go_interactive(tmp_path, emu) -> None:
    cfg, imgs = _setup(tmp_path, emu, 2)
    emu.batches.duration = 3600
    assert cli(cfg, "sync", "--no-wait").returncode == 6
    (job,) = emu.batches.jobs()
    emu.batches.delete(job.id)
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert _written(imgs) and emu.stats()["requests"]["generate"] == 2
    assert emu.batches.created == 1


def test_key_changed_while_a_job_is_open_halts_then_heals(tmp_path) -> None:
    from tests.helpers import KEY

    with Emulator(EmulatorConfig(key=KEY, batch_pending=0.3, batch_duration=3600)) as emu:
        cfg, imgs = _setup(tmp_path, emu, 2)
        assert cli(cfg, "sync", "--no-wait").returncode == 6
        r = cli(cfg, "sync", GEMINI_API_KEY="another-key-0123456789")
        assert r.returncode == 3, r.stderr  # halted: the job stays recorded
        assert not _written(imgs)
        emu.clock.advance(3600)
        r = cli(cfg, "sync")
        assert r.returncode == 0, r.stderr
        assert _written(imgs) and emu.batches.created == 1
        assert "generate" not in emu.stats()["requests"]


def test_the_daemon_batches_a_backlog_and_writes_it(tmp_path, emu) -> None:
    from tests.helpers import Running

    cfg, imgs = _setup(tmp_path, emu, 3)
    d = Running(cfg)
    try:
        wait_for(lambda: _written(imgs), timeout=60, what="sidecars from the batch job",
                 proc=d.proc)
    finally:
        assert d.stop() == 0
    assert emu.batches.created == 1 and "generate" not in emu.stats()["requests"]
    assert "batch job" in d.log()


def test_a_model_without_batch_jobs_check_warns_and_sync_goes_interactive(
        tmp_path, emu) -> None:
    from mediasync.media.samples import wav_bytes

    cfg = write_config(tmp_path, emu.base_url, folder_extra=ALWAYS)
    cfg.write_text(cfg.read_text().replace("[api]", '[api]\nmodel = "gemini-3.5-transcribe"'))
    memo = tmp_path / "inbox" / "memo.wav"
    memo.write_bytes(wav_bytes(1.0))
    r = cli(cfg, "check")
    assert "does not list batchGenerateContent" in r.stdout, r.stdout
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "inbox" / "memo.wav.transcript.txt").exists()
    assert emu.batches.created == 0 and emu.stats()["requests"]["generate"] == 1
