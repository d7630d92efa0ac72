"""`mediasync demo` end to end: the README's "run it" command must work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _env() -> dict[str, str]:
    # A fresh machine: no key, no config, no systemd around it.
    drop = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "CREDENTIALS_DIRECTORY", "MEDIASYNC_CONFIG",
            "MEDIASYNC_STATE_DIR", "NOTIFY_SOCKET", "JOURNAL_STREAM")
    return {k: v for k, v in os.environ.items() if k not in drop}


def test_demo_runs_to_completion(tmp_path: Path) -> None:
    env = {**_env(), "TMPDIR": str(tmp_path)}
    # Speed is the benchmarks' business, not a test's: the time-out only bounds a hang.
    r = subprocess.run([sys.executable, "-m", "mediasync", "demo"], env=env,
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for name in ("photo.png.caption.md", "memo.wav.transcript.txt", "clip.mp4.caption.md",
                 "photo-2.png.caption.md", "photo.png.xmp", "clip.en.srt"):
        assert f">> {name}:" in out
    assert "<rdf:li xml:lang=\"x-default\">" in out and "00:00:00,000 --> 00:00:02,000" in out
    assert "| " in out and "watching 1 folder(s)" in out  # the daemon's own log lines
    assert "4 synced" in out  # the status output
    assert "mediasync init" in out and "systemd" in out
    assert "Traceback" not in out + r.stderr
    assert list(tmp_path.iterdir()) == []  # the temporary folder is cleaned up


def test_demo_keep_leaves_the_folder_and_times_out_cleanly(tmp_path: Path) -> None:
    # An impossible deadline: the demo must fail in one line, exit 1, and still
    # stop its daemon and (with --keep) leave the folder for a look.
    env = {**_env(), "TMPDIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "mediasync", "demo", "--keep", "--timeout", "0"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "FAILED: timed out waiting for" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    kept = list(tmp_path.iterdir())
    assert len(kept) == 1 and (kept[0] / "config.toml").exists()
    assert f"kept the demo folder: {kept[0]}" in r.stdout
