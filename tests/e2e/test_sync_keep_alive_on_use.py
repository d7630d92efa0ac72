"""`sync` with keep_alive = "on_use": a copy that lapsed is not uploaded again while
every sidecar is current, and `status` calls the file synced and says why."""

from __future__ import annotations

import json

import pytest

from mediasync.media.samples import png_bytes
from tests.helpers import cli, write_config

HOUR = 3600.0


@pytest.mark.parametrize("keep_alive", ["always", "on_use"])
def test_a_lapsed_copy_is_made_again_only_when_kept_alive(tmp_path, keep_alive, emu):
    cfg = write_config(tmp_path, emu.base_url, daemon={"keep_alive": keep_alive})
    (tmp_path / "inbox" / "a.png").write_bytes(png_bytes(seed=5))
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert emu.stats()["uploads_started"] == 1

    emu.clock.advance(49 * HOUR)  # the copy expired while nothing ran
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    status = json.loads(cli(cfg, "status", "--json").stdout)
    (f,) = status["files"]
    assert f["state"] == "synced", f
    if keep_alive == "always":
        assert emu.stats()["uploads_started"] == 2 and emu.stats()["live_files"] == 1
    else:
        assert emu.stats()["uploads_started"] == 1 and emu.stats()["live_files"] == 0
        assert "on_use" in f["note"]
        assert "WARNING" not in r.stderr, r.stderr  # a lapsed copy is expected here
    assert emu.stats()["requests"]["generate"] == 1  # the caption is current either way
