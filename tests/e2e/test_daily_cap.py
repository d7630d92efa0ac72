"""The owner's daily cap through the real CLI against the emulator (issue 18, item 9):
held before each call, read from the config in force, and `sync`'s exit code and
`status`'s tokens true to what was spent."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

from mediasync.emulator import Emulator, EmulatorConfig
from mediasync.media.samples import png_bytes
from tests.helpers import Running, cli, db_rows, wait_for, write_config


def _config(tmp_path: Path, emu: Emulator, cap: int | None, *, generations: int = 8) -> Path:
    cfg = write_config(tmp_path, emu.base_url, daemon={"max_generations": generations},
                       folder_extra="thinking_budget = 0")
    # The token numbers below are 2.5 Flash's (an image by its tiles; thinking off).
    cfg.write_text(cfg.read_text().replace("[api]\n", '[api]\nmodel = "gemini-2.5-flash"\n'))
    if cap is not None:
        cfg.write_text(cfg.read_text().replace(
            "[[folders]]", f"[limits]\nmax_daily_tokens = {cap}\n\n[[folders]]"))
    return cfg


def _spent(cfg: Path) -> int:
    return sum(p + o + t for p, o, t in db_rows(
        cfg, "SELECT prompt_tokens, output_tokens, thoughts_tokens FROM usage"))


def _photos(tmp_path: Path, n: int, seed: int) -> None:
    for i in range(n):
        (tmp_path / "inbox" / f"p{i:02d}.png").write_bytes(png_bytes(seed=seed + i))


def test_calls_in_flight_together_do_not_overshoot_the_cap(tmp_path):
    # Slow answers: all eight generation slots are in flight at once.
    with Emulator(EmulatorConfig(port=0, generate_latency=0.4)) as emu:
        cfg = _config(tmp_path, emu, 2_000)
        _photos(tmp_path, 12, 900)
        r = cli(cfg, "sync")
        assert r.returncode == 5, r.stderr  # work is left waiting for the cap
        assert 0 < _spent(cfg) <= 2_000
        assert emu.stats()["requests"]["generate"] < 12


# About 310 tokens a caption with thinking off: 2,100 holds six of ten.
CAP = 2_100


def test_raising_the_cap_lets_the_next_sync_go_on(tmp_path, emu):
    cfg = _config(tmp_path, emu, CAP, generations=1)
    _photos(tmp_path, 10, 920)
    assert cli(cfg, "sync").returncode == 5
    done = emu.stats()["requests"]["generate"]
    assert 0 < done < 10
    st = json.loads(cli(cfg, "status", "--json").stdout)
    [paused] = st["paused"]
    assert paused["model"] == "all models" and paused["quota"] == "daily token cap of 2,100"
    assert "PAUSED: daily token cap of 2,100 for all models used" in cli(cfg, "status").stdout
    _config(tmp_path, emu, 100_000, generations=1)  # the owner raises it
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert emu.stats()["requests"]["generate"] == 10
    st = json.loads(cli(cfg, "status", "--json").stdout)
    assert st["paused"] == [] and st["cap"]["reached"] is None


def test_removing_the_cap_and_reloading_the_daemon_goes_on_at_once(tmp_path, emu):
    cfg = _config(tmp_path, emu, CAP, generations=1)
    _photos(tmp_path, 10, 940)
    d = Running(cfg)
    try:
        wait_for(lambda: "daily token cap of 2,100 for all models used" in d.log(),
                 what="the cap", proc=d.proc)
        held = emu.stats()["requests"]["generate"]
        assert held < 10
        _config(tmp_path, emu, None, generations=1)  # no cap any more
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: emu.stats()["requests"].get("generate", 0) == 10, timeout=30,
                 what="the other captions", proc=d.proc)
        wait_for(lambda: len(list((tmp_path / "inbox").glob("*.caption.md"))) == 10,
                 what="ten captions", proc=d.proc)
    finally:
        assert d.stop() == 0


def test_a_cap_reached_by_the_last_call_of_a_finished_sync_is_exit_0(tmp_path, emu):
    cfg = _config(tmp_path, emu, 2_000)
    # 1600 × 1600 px: 9 tiles of 258 tokens, more than the first call's reservation.
    (tmp_path / "inbox" / "big.png").write_bytes(png_bytes(1600, 1600, seed=960))
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert _spent(cfg) >= 2_000  # reached, on the one call there was to make
    assert (tmp_path / "inbox" / "big.png.caption.md").exists()
    assert "daily token cap of 2,000" in r.stderr  # said, but not a stop


def test_status_counts_every_attempts_tokens(tmp_path, emu):
    # The service ignores "pattern", so each answer breaks the schema: asked twice a
    # pass, two passes: four paid calls for one output.
    prompts = """
[[folders.prompts]]
kinds = ["image"]
format = "json"
prompt = "Give the photo's catalogue number."
sidecar = ".json"
[folders.prompts.schema]
type = "object"
required = ["number"]
properties.number = { type = "string", pattern = "^[0-9]+$" }
"""
    cfg = write_config(tmp_path, emu.base_url, prompts=prompts)
    (tmp_path / "inbox" / "photo.png").write_bytes(png_bytes(seed=970))
    assert cli(cfg, "sync").returncode == 1
    con = sqlite3.connect(tmp_path / "state" / "state.db")
    con.execute("UPDATE outputs SET retry_at = 1")  # due now: the next sync asks again
    con.commit()
    con.close()
    assert cli(cfg, "sync").returncode == 1
    assert emu.stats()["requests"]["generate"] == 4
    st = json.loads(cli(cfg, "status", "--json").stdout)
    [f] = st["files"]
    assert f["tokens"] == _spent(cfg) > 0  # every attempt, not the last one's
