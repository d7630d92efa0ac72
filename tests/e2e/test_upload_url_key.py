"""The API key never reaches the state file, even inside an upload URL (wire/16)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mediasync.emulator import Emulator, EmulatorConfig, parse_fault_spec
from mediasync.gemini.redact import clear_secrets, register_secret
from mediasync.media.samples import png_bytes
from mediasync.remote.uploads import storable_url
from tests.helpers import KEY, cli, db_rows, env, kill9, wait_for, write_config


def test_storable_url_drops_the_key_parameter_and_refuses_a_key_elsewhere() -> None:
    register_secret("sEcReT-key-123")
    try:
        base = "https://h/upload/v1beta/files?upload_id=abc&upload_protocol=resumable"
        assert storable_url(base + "&key=sEcReT-key-123") == base
        first = "https://h/u?key=sEcReT-key-123&upload_id=abc"
        assert storable_url(first) == "https://h/u?upload_id=abc"
        assert storable_url(base) == base
        assert storable_url("https://h/u?upload_id=abc&k=sEcReT%2Dkey-123") is None
        assert storable_url("https://h/sEcReT-key-123/u?upload_id=abc") is None
    finally:
        clear_secrets()


def _state_bytes(cfg: Path) -> bytes:
    # The database and its WAL: the URL may sit in either until a checkpoint.
    return b"".join(p.read_bytes() for p in (cfg.parent / "state").glob("state.db*"))


def test_key_in_the_upload_url_never_reaches_state_db_and_the_upload_resumes(
        tmp_path: Path) -> None:
    config = EmulatorConfig(port=0, key=KEY, key_in_upload_url=True)
    with Emulator(config) as emu:
        cfg = write_config(tmp_path, emu.base_url)
        (tmp_path / "inbox" / "photo.png").write_bytes(png_bytes(64, 64, seed=7))
        # The first chunk stalls: the session is recorded, then the process dies.
        emu.add_fault(parse_fault_spec("slow:match=chunk:delay=5"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "mediasync", "-c", str(cfg), "sync"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
        try:
            (url,) = wait_for(lambda: [r[0] for r in db_rows(
                cfg, "SELECT next_url FROM contents WHERE next_url IS NOT NULL")],
                what="the upload session recorded", proc=proc)
        finally:
            kill9(proc)
        assert "upload_id=" in url and "key=" not in url
        assert KEY.encode() not in _state_bytes(cfg)

        emu.clear_faults()
        r = cli(cfg, "sync")
        assert r.returncode == 0, r.stderr
        stats = emu.stats()
        assert stats["uploads_started"] == 1  # resumed with the keyless URL, not restarted
        assert stats["uploads_finalized"] == 1
        assert KEY.encode() not in _state_bytes(cfg)
