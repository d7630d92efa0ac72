"""`mediasync demo`: the whole product on a fresh machine, with no API key.

Starts the emulator in this process, writes sample media into a temporary
folder, and runs the real daemon (`mediasync run`) on it as a subprocess, so
what the user sees is what systemd would run: its log lines, the sidecars as
they appear, live pickup of a file dropped in later, `mediasync status`, and a
clean SIGTERM stop.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import tomli_w

from mediasync.config import DEFAULT_PROMPTS
from mediasync.emulator import Emulator, EmulatorConfig
from mediasync.media.samples import png_bytes, write_samples

DEMO_KEY = "demo-key"
# The daemon's own sidecar names for the samples: the default prompts, plus an XMP
# sidecar for the photo library and subtitles for the player.
EXPECTED = ("photo.png.caption.md", "memo.wav.transcript.txt", "clip.mp4.caption.md",
            "photo.png.xmp", "clip.en.srt")
EXTRA_PROMPTS = (
    {"kinds": ["image"], "format": "xmp",
     "prompt": "Caption this photo in one or two sentences and give a few keywords."},
    {"kinds": ["video"], "format": "subtitles", "prompt": "Transcribe the speech.",
     "subtitles": ["srt"], "language": ["en"]},
)
LATE_FILE = "photo-2.png"


class DemoFailed(Exception):
    """The demo could not finish; ``str()`` says why in one line."""


def _say(text: str = "") -> None:
    print(text, flush=True)


def _pump(stream: Iterable[str]) -> None:
    # The daemon's log lines, indented so they read apart from the demo's own.
    for line in stream:
        print(f"    | {line.rstrip()}", flush=True)


def write_config(path: Path, base_url: str, folder: Path, state_dir: Path) -> None:
    config = {
        "api": {"base_url": base_url},
        "daemon": {"state_dir": str(state_dir), "settle": "1s"},
        "folders": [{"path": str(folder),
                     "prompts": [*map(dict, DEFAULT_PROMPTS), *map(dict, EXTRA_PROMPTS)]}],
    }
    path.write_text(tomli_w.dumps(config), encoding="utf-8")


def _wait_for(folder: Path, names: Iterable[str], daemon: subprocess.Popen[str],
              deadline: float) -> None:
    """Print each sidecar as it appears; raise DemoFailed on time-out or a dead daemon."""
    pending = list(names)
    while pending:
        for name in list(pending):
            p = folder / name
            if p.exists():  # written atomically: if it is there, it is whole
                pending.remove(name)
                text = p.read_text(encoding="utf-8", errors="replace").strip()
                _say(f"\n  >> {name}:")
                for line in text.splitlines() or [""]:
                    _say(f"       {line}")
                _say()
        if not pending:
            return
        if daemon.poll() is not None:
            raise DemoFailed(f"the daemon exited early with code {daemon.returncode}; "
                             "its log above says why")
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out waiting for {', '.join(pending)}; "
                             "the daemon's log above may say why")
        time.sleep(0.1)


def _stop(daemon: subprocess.Popen[str]) -> int:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            return daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            return daemon.wait()
    return daemon.returncode


def run(*, keep: bool = False, timeout: float = 60.0) -> int:
    """Run the demo; 0 when every sidecar appeared and the daemon stopped cleanly."""
    # The in-process emulator's request lines would mix with the daemon's log.
    logging.getLogger("mediasync.emulator").setLevel(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="mediasync-demo-"))
    media, cfg = tmp / "media", tmp / "config.toml"
    emu = Emulator(EmulatorConfig(port=0, key=DEMO_KEY, processing_delay=0.3,
                                  video_processing_delay=1.0, generate_latency=0.3))
    daemon: subprocess.Popen[str] | None = None
    pump: threading.Thread | None = None
    code = 1
    try:
        emu.start()
        write_config(cfg, emu.base_url, media, tmp / "state")
        _say(f"mediasync demo: the Gemini File API emulator is listening on {emu.base_url}")
        samples = write_samples(media)
        _say(f"sample media in {media}: {', '.join(p.name for p in samples)}")
        _say(f"config: {cfg}")
        _say(f"starting the daemon: mediasync -c {cfg} run\n")
        env = _daemon_env()
        daemon, pump = _start_daemon(cfg, env)
        _wait_for(media, EXPECTED, daemon, time.monotonic() + timeout)
        _drop_late_file(media, daemon, timeout)
        _show_status(cfg, env)
        _say("\nstopping the daemon (SIGTERM, as systemctl stop does)")
        rc = _stop(daemon)
        pump.join(timeout=5)
        if rc != 0:
            raise DemoFailed(f"the daemon exited with code {rc} on SIGTERM")
        stats = emu.stats()
        _say(f"\nthe emulator took {stats['uploads_finalized']} uploads; "
             f"{stats['live_files']} files are mirrored there")
        _next_steps()
        code = 0
    except DemoFailed as e:
        print(f"mediasync demo: FAILED: {e}", file=sys.stderr, flush=True)
        code = 1
    finally:
        if daemon is not None:
            _stop(daemon)
            if pump is not None:
                pump.join(timeout=5)
        emu.stop()
        if keep:
            _say(f"\nkept the demo folder: {tmp} (config {cfg}, media {media})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return code


def _daemon_env() -> dict[str, str]:
    """This process's environment with the demo key, minus what a real setup would add."""
    env = {k: v for k, v in os.environ.items()
           # A demo run under systemd or with a real setup must not pick those up.
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
                        "MEDIASYNC_STATE_DIR", "CREDENTIALS_DIRECTORY", "GOOGLE_API_KEY")}
    env["GEMINI_API_KEY"] = DEMO_KEY
    return env


def _start_daemon(cfg: Path, env: dict[str, str]
                  ) -> tuple[subprocess.Popen[str], threading.Thread]:
    """`mediasync run` as a subprocess, and the thread echoing its log."""
    daemon = subprocess.Popen(
        [sys.executable, "-m", "mediasync", "-c", str(cfg), "run"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, bufsize=1,
    )
    assert daemon.stdout is not None
    pump = threading.Thread(target=_pump, args=(daemon.stdout,), daemon=True)
    pump.start()
    return daemon, pump


def _drop_late_file(media: Path, daemon: subprocess.Popen[str], timeout: float) -> None:
    """Live pickup: one more photo appears while the daemon runs, and gets its sidecars."""
    _say(f"dropping one more file into the watched folder: {LATE_FILE}\n")
    late = media / LATE_FILE
    tmp_late = media / f".{LATE_FILE}.part"  # a dotfile: the watcher ignores it
    tmp_late.write_bytes(png_bytes(96, 64, seed=2))
    os.replace(tmp_late, late)
    _wait_for(media, (LATE_FILE + ".caption.md", LATE_FILE + ".xmp"), daemon,
              time.monotonic() + timeout)


def _show_status(cfg: Path, env: dict[str, str]) -> None:
    _say(f"$ mediasync -c {cfg} status")
    status = subprocess.run(
        [sys.executable, "-m", "mediasync", "-c", str(cfg), "status"],
        env=env, capture_output=True, text=True, timeout=30,
    )
    _say(status.stdout.rstrip() or status.stderr.rstrip())


def _next_steps() -> None:
    _say("""
That was the real daemon against a local emulator. To use it on your own media:
  1. mediasync init --folder ~/Pictures/inbox     writes ~/.config/mediasync/config.toml
  2. put your key in place: export GEMINI_API_KEY=...  or set api.key_file
     (get a key at https://aistudio.google.com/apikey; README: Quick start)
  3. mediasync check                              config, key and folders
  4. mediasync run                                or under systemd: README, Running under systemd
""".rstrip())
