"""End to end: what one `mediasync sync` learned of the quotas, the next one knows.

A free-tier key synced from cron: the first run is refused once and learns the
limit; the next runs pace at it from the first request (no fresh 429), and a day
quota already partly used today is honoured across runs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mediasync.config import DEFAULT_API
from mediasync.emulator import Emulator, EmulatorConfig
from mediasync.media.samples import png_bytes
from tests.helpers import cli, db_rows, env, wait_for, write_config

MODEL = DEFAULT_API["model"]
FAST = "thinking_budget = 0\nmedia_resolution = \"low\""


@contextmanager
def _syncing(cfg: Path, log: Path) -> Iterator[subprocess.Popen]:
    """`mediasync sync` in the background, logging to ``log``; SIGTERM on leaving."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mediasync", "-c", str(cfg), "--log-level", "debug", "sync"],
            stdout=out, stderr=subprocess.STDOUT, env=env())
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def _learned(cfg: Path) -> dict:
    rows = db_rows(cfg, "SELECT value FROM meta WHERE key='learned_limits'")
    return json.loads(rows[0][0]) if rows else {}


def test_a_learned_per_minute_limit_spares_the_next_sync_a_429(tmp_path):
    # One generate call a minute: a run with more files than that must pace.
    # Each run is stopped once its pacing shows (waiting out the real minute
    # would prove nothing more and cost a minute per run).
    with Emulator(EmulatorConfig(port=0, quota_rpm=1)) as emu:
        cfg = write_config(tmp_path, emu.base_url, daemon={"max_generations": 1},
                           folder_extra=FAST)
        inbox = tmp_path / "inbox"
        for i in range(2):
            (inbox / f"a{i}.png").write_bytes(png_bytes(seed=70 + i))

        with _syncing(cfg, tmp_path / "sync1.log") as first:
            wait_for(lambda: _learned(cfg).get(f"generate:{MODEL}", {}).get("rpm") == 1,
                     what="the limit learned and stored", proc=first)
        q = emu.stats()["quota"]
        assert q["admitted"] == {MODEL: 1} and q["refused"] == {MODEL: {"rpm": 1}}

        emu.clock.advance(3600)  # the next cron run, an hour later
        for i in range(2):
            (inbox / f"b{i}.png").write_bytes(png_bytes(seed=80 + i))
        log2 = tmp_path / "sync2.log"
        with _syncing(cfg, log2) as second:
            wait_for(lambda: f"generate:{MODEL}: paced" in log2.read_text(),
                     what="the second run pacing", proc=second)
            q = emu.stats()["quota"]
        # It asked once, then waited for the minute: no second refusal.
        assert q["admitted"] == {MODEL: 2}
        assert q["refused"] == {MODEL: {"rpm": 1}}


def test_a_pinned_day_quota_holds_across_two_syncs_in_one_day(tmp_path):
    with Emulator(EmulatorConfig(port=0, quota_rpd=3)) as emu:
        cfg = write_config(tmp_path, emu.base_url, daemon={"max_generations": 1},
                           folder_extra=FAST)
        cfg.write_text(cfg.read_text().replace(
            "[[folders]]", "[limits]\nrequests_per_day = 3\n\n[[folders]]"))
        inbox = tmp_path / "inbox"
        for i in range(2):
            (inbox / f"a{i}.png").write_bytes(png_bytes(seed=90 + i))
        r1 = cli(cfg, "sync")
        assert r1.returncode == 0, r1.stderr

        for i in range(2):
            (inbox / f"b{i}.png").write_bytes(png_bytes(seed=95 + i))
        r2 = cli(cfg, "sync")
        assert r2.returncode == 5, r2.stderr
        assert f"daily quota of 3 requests for {MODEL} used" in r2.stderr
        q = emu.stats()["quota"]
        assert q["admitted"] == {MODEL: 3}
        assert q["refused"] == {}  # stopped by its own count, not by the service
