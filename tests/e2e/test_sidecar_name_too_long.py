"""A media file whose sidecar name would be too long for the file system: a clear
reason in `status`, retried later (a rename heals it), never an "unexpected error"."""

from __future__ import annotations

import json

from mediasync.media.samples import png_bytes
from tests.helpers import cli, write_config


def test_a_sidecar_name_too_long_is_said_plainly(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url)
    (tmp_path / "inbox" / ("x" * 246 + ".png")).write_bytes(png_bytes(seed=91))
    r = cli(cfg, "sync")
    assert "unexpected" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    (f,) = json.loads(cli(cfg, "status", "--json").stdout)["files"]
    assert f["state"] == "waiting", f
    assert "cannot use" in f["message"] and "too long" in f["message"], f
    assert f["next_try"] is not None
