"""End-to-end: the real `mediasync sync` against the emulator over loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from mediasync.emulator import Emulator, EmulatorConfig, Fault
from mediasync.media.samples import mp4_bytes, png_bytes, wav_bytes
from tests.helpers import KEY, cli, db_rows, env, kill9, wait_for, write_config


def _setup(tmp_path: Path, emu: Emulator, **kw) -> tuple[Path, Path]:
    cfg = write_config(tmp_path, emu.base_url, **kw)
    return cfg, tmp_path / "inbox"


def test_sync_writes_every_sidecar_then_a_second_sync_does_nothing(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    (inbox / "photo.png").write_bytes(png_bytes(seed=1))
    (inbox / "memo.wav").write_bytes(wav_bytes(0.5))
    (inbox / "sub").mkdir()
    (inbox / "sub" / "clip.mp4").write_bytes(mp4_bytes(1.0))
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert (inbox / "photo.png.caption.md").read_text().startswith("[mediasync emulator] image/png")
    assert "audio/wav" in (inbox / "memo.wav.transcript.txt").read_text()
    assert "video/mp4" in (inbox / "sub" / "clip.mp4.caption.md").read_text()
    assert emu.stats()["live_files"] == 3
    before = emu.stats()["requests"]
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    after = emu.stats()["requests"]
    calls = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    # the listing, and the start-up look at the configured model (issue 16)
    assert {k: v for k, v in calls.items() if v} == {"list": 1, "models.get": 1}


def test_same_bytes_in_two_places_make_one_remote_file(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    data = png_bytes(seed=2)
    (inbox / "a.png").write_bytes(data)
    (inbox / "b.png").write_bytes(data)
    assert cli(cfg, "sync").returncode == 0
    assert emu.stats()["uploads_finalized"] == 1
    assert (inbox / "a.png.caption.md").exists() and (inbox / "b.png.caption.md").exists()


def test_rename_moves_sidecars_without_upload_or_generation(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    (inbox / "old name.png").write_bytes(png_bytes(seed=3))
    assert cli(cfg, "sync").returncode == 0
    before = emu.stats()
    os.rename(inbox / "old name.png", inbox / "new name.png")
    assert cli(cfg, "sync").returncode == 0
    after = emu.stats()
    assert after["uploads_started"] == before["uploads_started"]
    assert after["requests"].get("generate") == before["requests"].get("generate")
    assert (inbox / "new name.png.caption.md").exists()
    assert not (inbox / "old name.png.caption.md").exists()
    assert after["live_files"] == 1


def test_modified_file_is_uploaded_again_and_old_copy_deleted(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    p = inbox / "photo.png"
    p.write_bytes(png_bytes(seed=4))
    assert cli(cfg, "sync").returncode == 0
    first = (inbox / "photo.png.caption.md").read_text()
    p.write_bytes(png_bytes(128, 96, seed=5))
    assert cli(cfg, "sync").returncode == 0
    second = (inbox / "photo.png.caption.md").read_text()
    assert first != second and "128×96" in second
    assert emu.stats()["live_files"] == 1
    assert emu.stats()["uploads_finalized"] == 2


def test_deleted_file_loses_its_remote_copy_but_keeps_sidecars(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    (inbox / "photo.png").write_bytes(png_bytes(seed=6))
    assert cli(cfg, "sync").returncode == 0
    assert emu.stats()["live_files"] == 1
    (inbox / "photo.png").unlink()
    assert cli(cfg, "sync").returncode == 0
    assert emu.stats()["live_files"] == 0
    assert (inbox / "photo.png.caption.md").exists()


def test_owner_edited_sidecar_is_kept_and_reported(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    p = inbox / "photo.png"
    p.write_bytes(png_bytes(seed=7))
    assert cli(cfg, "sync").returncode == 0
    side = inbox / "photo.png.caption.md"
    side.write_text("My own caption.\n")
    p.write_bytes(png_bytes(seed=8))  # new content would regenerate it
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert side.read_text() == "My own caption.\n"
    assert "kept the owner's edit" in r.stderr
    assert "kept edit" in cli(cfg, "status").stdout


def test_changed_prompt_regenerates_unedited_sidecars_only(tmp_path, emu):
    prompt = '[[folders.prompts]]\nkinds = ["image"]\nprompt = "{}"\nsidecar = ".caption.md"\n'
    cfg, inbox = _setup(tmp_path, emu, prompts=prompt.format("Say one."))
    (inbox / "a.png").write_bytes(png_bytes(seed=9))
    (inbox / "b.png").write_bytes(png_bytes(seed=10))
    assert cli(cfg, "sync").returncode == 0
    (inbox / "b.png.caption.md").write_text("mine\n")
    cfg = write_config(tmp_path, emu.base_url, prompts=prompt.format("Say two."))
    assert cli(cfg, "sync").returncode == 0
    assert "Say two." in (inbox / "a.png.caption.md").read_text()
    assert (inbox / "b.png.caption.md").read_text() == "mine\n"


def test_bad_inputs_are_reported_and_the_rest_is_synced(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    (inbox / "good.png").write_bytes(png_bytes(seed=11))
    (inbox / "empty.jpg").write_bytes(b"")
    (inbox / "broken.png").write_bytes(b"this is not a png at all")
    with open(inbox / "huge.mp4", "wb") as f:  # sparse: costs no disk
        f.truncate(2 * 1000**3 + 1)
    os.mkfifo(inbox / "pipe.mp3")
    (inbox / "folder.jpg").mkdir()
    odd = "mémo — 'quoted' \"dq\" $x\nnewline.wav"
    (inbox / odd).write_bytes(wav_bytes(0.2))
    (inbox / "-dash.png").write_bytes(png_bytes(seed=12))
    r = cli(cfg, "sync", timeout=60)
    assert r.returncode == 1
    assert "empty.jpg" in r.stderr and "empty file" in r.stderr
    assert "broken.png" in r.stderr and "could not process" in r.stderr
    assert "huge.mp4" in r.stderr and "too large" in r.stderr
    assert "Traceback" not in r.stderr
    for name in ("good.png.caption.md", odd + ".transcript.txt", "-dash.png.caption.md"):
        assert (inbox / name).exists()
    assert emu.stats()["live_files"] == 3  # broken.png was deleted after FAILED
    # A second pass does not retry what cannot succeed.
    before = emu.stats()["uploads_started"]
    assert cli(cfg, "sync").returncode == 1
    assert emu.stats()["uploads_started"] == before


def test_lost_finalize_answer_adopts_the_file(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    (inbox / "photo.png").write_bytes(png_bytes(seed=13))
    emu.add_fault(Fault(kind="lost_finalize"))
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert emu.stats()["uploads_finalized"] == 1
    assert emu.stats()["uploads_started"] == 1
    assert emu.stats()["live_files"] == 1


@pytest.mark.parametrize("status", [429, 503])
def test_error_storms_slow_down_but_finish(tmp_path, emu, status):
    cfg, inbox = _setup(tmp_path, emu)
    for i in range(4):
        (inbox / f"p{i}.png").write_bytes(png_bytes(seed=20 + i))
    emu.add_fault(Fault(kind="status", status=status, retry_delay="0.2s", match="any", times=6))
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert emu.stats()["faults_fired"] == 6
    assert all((inbox / f"p{i}.png.caption.md").exists() for i in range(4))


def test_blocked_answer_is_recorded_not_retried(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    (inbox / "photo.png").write_bytes(png_bytes(seed=14))
    emu.add_fault(Fault(kind="blocked"))
    r = cli(cfg, "sync")
    assert r.returncode == 1 and "blocked" in r.stderr
    gens = emu.stats()["requests"]["generate"]
    assert cli(cfg, "sync").returncode == 1
    assert emu.stats()["requests"]["generate"] == gens


def test_wrong_key_is_one_clear_line_and_never_printed(tmp_path):
    with Emulator(EmulatorConfig(port=0, key="the-right-key")) as e:
        cfg = write_config(tmp_path, e.base_url)
        (tmp_path / "inbox" / "photo.png").write_bytes(png_bytes())
        r = cli(cfg, "sync")
    assert r.returncode == 3
    assert "API key was refused" in r.stderr
    assert KEY not in r.stderr + r.stdout
    assert "Traceback" not in r.stderr


def test_bad_config_names_the_key(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url, daemon={"settel": "2s"})
    r = cli(cfg, "sync")
    assert r.returncode == 2
    assert "daemon.settel" in r.stderr and "settle" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_kill_9_mid_upload_resumes_with_one_remote_copy(tmp_path):
    with Emulator(EmulatorConfig(port=0)) as e:
        # The original's bytes (audio over 25 MB would go as a small proxy under "auto").
        cfg = write_config(tmp_path, e.base_url, folder_extra='upload = "original"')
        big = tmp_path / "inbox" / "big.wav"
        with wave.open(str(big), "wb") as w:  # five 8 MiB chunks of silence
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(bytes(40 * 1024 * 1024))
        # Slow chunks open a window to kill the process mid-upload.
        e.add_fault(Fault(kind="slow", delay=0.5, match="chunk", times=None))
        proc = subprocess.Popen(
            [sys.executable, "-m", "mediasync", "-c", str(cfg), "sync"],
            env=env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(
            lambda: db_rows(cfg, "SELECT next_offset FROM contents WHERE next_offset > 0"),
            what="an acknowledged chunk", proc=proc,
        )
        kill9(proc)
        received = e.stats()["bytes_received"]
        assert 0 < received < big.stat().st_size
        e.faults.clear()
        r = cli(cfg, "sync")
        assert r.returncode == 0, r.stderr
        s = e.stats()
        assert s["uploads_started"] == 1
        assert s["live_files"] == 1
        assert s["bytes_received"] < 2 * big.stat().st_size
        assert (tmp_path / "inbox" / "big.wav.transcript.txt").exists()


def test_status_json_lists_files_and_tokens(tmp_path, emu):
    import json

    cfg, inbox = _setup(tmp_path, emu)
    (inbox / "photo.png").write_bytes(png_bytes(seed=15))
    assert cli(cfg, "sync").returncode == 0
    data = json.loads(cli(cfg, "status", "--json").stdout)
    (f,) = data["files"]
    assert f["state"] == "synced" and f["remote_name"].startswith("files/")
    assert f["tokens"] > 258
    assert f["sidecars"][0]["outcome"] == "written"


def test_missing_folder_is_reported_and_others_still_sync(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    shutil.rmtree(inbox)
    r = cli(cfg, "sync")
    assert r.returncode == 0
    assert "does not exist" in r.stderr


def test_temp_files_left_by_a_crash_are_cleaned_but_young_ones_kept(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    old, young = inbox / ".mediasync-tmp-0123456789abcdef", inbox / ".mediasync-tmp-young"
    old.write_text("half a caption")
    young.write_text("being written")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert cli(cfg, "sync").returncode == 0
    assert not old.exists() and young.exists()
