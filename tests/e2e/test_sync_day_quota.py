"""End to end: `mediasync sync` against an emulator whose day quota runs out."""

from __future__ import annotations

import json

from mediasync.config import DEFAULT_API
from mediasync.emulator import Emulator, EmulatorConfig
from mediasync.media.samples import png_bytes
from tests.helpers import cli, write_config

MODEL = DEFAULT_API["model"]


def test_sync_stops_on_a_used_day_quota_with_exit_5_and_status_says_why(tmp_path):
    with Emulator(EmulatorConfig(port=0, quota_rpd=3)) as emu:
        cfg = write_config(tmp_path, emu.base_url, daemon={"max_generations": 1},
                           folder_extra="thinking_budget = 0\nmedia_resolution = \"low\"")
        inbox = tmp_path / "inbox"
        for i in range(6):
            (inbox / f"p{i}.png").write_bytes(png_bytes(seed=40 + i))
        r = cli(cfg, "sync")
        assert r.returncode == 5, r.stderr
        assert f"daily quota of 3 requests for {MODEL} used; resuming at 00:00 PT" \
            in r.stderr
        quota = emu.stats()["quota"]
        assert quota["admitted"] == {MODEL: 3}
        assert quota["refused"] == {MODEL: {"rpd": 1}}  # one refusal, then none

        # A second sync honours the recorded pause: not one generate call.
        gens = emu.stats()["requests"]["generate"]
        r2 = cli(cfg, "sync")
        assert r2.returncode == 5
        assert emu.stats()["requests"]["generate"] == gens

        st = json.loads(cli(cfg, "status", "--json").stdout)
        (p,) = st["paused"]
        assert p["model"] == MODEL and p["quota"] == "daily quota of 3 requests"
        assert p["resume_at_pt"].endswith(("T00:00:00-08:00", "T00:00:00-07:00"))
        assert st["costs"][MODEL]["today"]["requests"] == 3
        assert st["costs"][MODEL]["today"]["cost_usd"] > 0
        # Waiting files are not failed files: they say when they are tried again.
        waiting = [f for f in st["files"] if f["state"] == "waiting"]
        assert len(waiting) == 3 and all("daily quota" in f["message"] for f in waiting)
        assert not [f for f in st["files"] if f["state"] == "failed"]
        text = cli(cfg, "status").stdout
        assert f"PAUSED: daily quota of 3 requests for {MODEL} used" in text


def test_daily_token_cap_pauses_generation(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url, daemon={"max_generations": 1})
    cfg.write_text(cfg.read_text().replace("[[folders]]", "[limits]\nmax_daily_tokens = 1\n\n"
                                           "[[folders]]"))
    inbox = tmp_path / "inbox"
    for i in range(3):
        (inbox / f"p{i}.png").write_bytes(png_bytes(seed=60 + i))
    r = cli(cfg, "sync")
    assert r.returncode == 5, r.stderr
    assert "daily token cap of 1 for all models used" in r.stderr
    # Reserved before calling: no call fits under a cap of 1 token, none is made.
    assert emu.stats()["requests"].get("generate", 0) == 0
