"""End-to-end against answers in the live service's form, and in forms we do not expect.

`sync` must write every sidecar whatever form `sha256Hash` takes (wire/11), throw an
upload away only when the local file really changed, and leave no file unfinished
without saying why.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mediasync.emulator import Emulator, EmulatorConfig, Fault
from mediasync.media.samples import mp4_bytes, png_bytes, wav_bytes
from tests.helpers import Running, cli, env, wait_for, write_config

SIDECARS = ("a.png.caption.md", "b.wav.transcript.txt", "c.mp4.caption.md")


def _sync_all(tmp_path: Path, emu: Emulator) -> tuple[Path, subprocess.CompletedProcess]:
    """The three media synced once; every sidecar must be written."""
    cfg = write_config(tmp_path, emu.base_url)
    inbox = tmp_path / "inbox"
    _media(inbox)
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    for name in SIDECARS:
        assert (inbox / name).exists(), name
    return cfg, r


def _media(inbox: Path) -> None:
    (inbox / "a.png").write_bytes(png_bytes(seed=71))
    (inbox / "b.wav").write_bytes(wav_bytes(0.3))
    (inbox / "c.mp4").write_bytes(mp4_bytes(1.0, seed=72))


@pytest.mark.parametrize("hash_form", ["hex", "raw", "none"])
def test_every_hash_form_writes_every_sidecar_with_one_upload_each(tmp_path, hash_form):
    with Emulator(EmulatorConfig(port=0, hash_form=hash_form)) as emu:
        _, r = _sync_all(tmp_path, emu)
        s = emu.stats()
        assert s["uploads_started"] == 3 and s["live_files"] == 3 and s.get("deletes", 0) == 0
    warnings = [line for line in r.stderr.splitlines() if "WARNING" in line]
    if hash_form == "hex":
        assert warnings == []
    else:  # one warning per run, not one per file
        assert len(warnings) == 1, r.stderr
        assert "sha256Hash" in warnings[0] or "hashes in a form" in warnings[0]


def test_a_file_changed_during_its_upload_is_uploaded_again(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url)
    photo = tmp_path / "inbox" / "memo.wav"
    photo.write_bytes(wav_bytes(0.3, freq=440.0))
    # The start answer is slow: the file is rewritten (same size, new bytes)
    # before any byte is sent, so the copy holds bytes we never hashed.
    emu.add_fault(Fault(kind="slow", delay=1.5, match="start"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mediasync", "-c", str(cfg), "sync"],
        env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wait_for(lambda: emu.stats()["requests"].get("start"), what="upload start", proc=proc)
    new = wav_bytes(0.3, freq=880.0)
    assert len(new) == photo.stat().st_size
    photo.write_bytes(new)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "changed while it was uploaded" in err
    s = emu.stats()
    assert s["uploads_finalized"] == 2 and s["live_files"] == 1
    # The copy that stays is of the new bytes, and so is the caption.
    (live,) = emu.list_files()
    import base64
    import hashlib

    assert base64.b64decode(live["sha256Hash"]).decode() == hashlib.sha256(new).hexdigest()
    caption = (photo.parent / "memo.wav.transcript.txt").read_text()
    assert hashlib.sha256(new).hexdigest()[:8] in caption


def test_an_unfinished_sync_says_why_for_every_file(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url)
    inbox = tmp_path / "inbox"
    (inbox / "ok.png").write_bytes(png_bytes(seed=75))
    (inbox / "empty.png").write_bytes(b"")
    (inbox / "busy.wav").write_bytes(wav_bytes(0.2))
    (inbox / "blocked.png").write_bytes(png_bytes(seed=76))
    # Every generate of busy.wav's kind fails: waiting to retry, not failed for good.
    emu.add_fault(Fault(kind="blocked", times=1))
    emu.add_fault(Fault(kind="status", status=503, match="generate", times=None))
    r = cli(cfg, "sync")
    assert r.returncode == 1
    status = json.loads(cli(cfg, "status", "--json").stdout)
    states = {Path(f["path"]).name: f for f in status["files"]}
    assert set(states) == {"ok.png", "empty.png", "busy.wav", "blocked.png"}
    for name, f in states.items():
        if f["state"] != "synced":
            assert f["message"], name
            assert name in r.stderr  # the sync's summary names it too, with its reason
            assert f["message"] in r.stderr or f["state"] in r.stderr
    assert states["empty.png"]["state"] == "failed"


def test_a_later_run_with_a_good_key_clears_halted(tmp_path):
    with Emulator(EmulatorConfig(port=0, key="the-right-key")) as emu:
        cfg = write_config(tmp_path, emu.base_url)
        (tmp_path / "inbox" / "photo.png").write_bytes(png_bytes(seed=77))
        assert cli(cfg, "sync", GEMINI_API_KEY="a-wrong-key").returncode == 3
        halted = json.loads(cli(cfg, "status", "--json").stdout)
        assert halted["halted"] and "refused" in halted["halted"]
        assert halted["files"][0]["message"].startswith("waiting: the API key was refused")
        assert "HALTED" in cli(cfg, "status").stdout
        assert cli(cfg, "sync", GEMINI_API_KEY="the-right-key").returncode == 0
        assert json.loads(cli(cfg, "status", "--json").stdout)["halted"] is None
        assert "HALTED" not in cli(cfg, "status").stdout


def test_reload_after_fixing_the_key_file_clears_halted(tmp_path):
    with Emulator(EmulatorConfig(port=0, key="the-right-key")) as emu:
        cfg = write_config(tmp_path, emu.base_url)
        key = tmp_path / "key"
        key.write_text("a-wrong-key\n")
        cfg.write_text(cfg.read_text().replace("[api]\n", f'[api]\nkey_file = "{key}"\n', 1))
        (tmp_path / "inbox" / "photo.png").write_bytes(png_bytes(seed=78))
        d = Running(cfg)
        try:
            wait_for(lambda: "HALTED" in cli(cfg, "status").stdout, what="halted", proc=d.proc)
            key.write_text("the-right-key\n")
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: (tmp_path / "inbox" / "photo.png.caption.md").exists(),
                     what="caption after reload", proc=d.proc)
            out = cli(cfg, "status").stdout
            assert "HALTED" not in out and "photo.png: synced" in out
        finally:
            assert d.stop() == 0, d.log()


def test_answers_missing_fields_keep_the_work(tmp_path):
    """No expirationTime, uri or state: assumed (48 h, the name's URI, usable), each said once."""
    omit = ("expirationTime", "uri", "state", "createTime")
    with Emulator(EmulatorConfig(port=0, omit_fields=omit)) as emu:
        cfg, r = _sync_all(tmp_path, emu)
        assert emu.stats()["uploads_started"] == 3 and emu.stats()["live_files"] == 3
        # A second pass finds every copy usable: nothing is uploaded again.
        assert cli(cfg, "sync").returncode == 0
        assert emu.stats()["uploads_started"] == 3
        out = cli(cfg, "status").stdout
    assert out.count("synced") >= 3 and "expires" in out
    warnings = [line for line in r.stderr.splitlines() if "WARNING" in line]
    for field in ("expirationTime", "no uri", "no state"):
        assert sum(field in w for w in warnings) == 1, (field, r.stderr)
