"""Upload proxies end to end (issue 15): `sync` uploads what the model needs instead
of the original, renewals upload the proxy again, the sidecars are the same, and
`status` says what went; a broken video falls back to its original, and when that
is refused too, the file's verdict names both reasons."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from mediasync.emulator import Emulator, EmulatorConfig
from mediasync.rules.units import human_bytes
from tests.helpers import cli, db_rows, write_config
from tests.real_media import audio, video


@pytest.fixture
def emu() -> Iterator[Emulator]:
    # ttl under renew_before: every copy is renewed as soon as it is made, in one sync.
    e = Emulator(EmulatorConfig(port=0, ttl=59 * 60, video_processing_delay=0.0)).start()
    yield e
    e.stop()


def test_sync_uploads_proxies_and_renews_them(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url, daemon={"renew_before": "1h"},
                       folder_extra='upload = "proxy"')
    inbox = tmp_path / "inbox"
    clip = video(inbox / "clip.mp4", seconds=3, width=1280, height=720, noise=True,
                 bitrate=6_000_000)
    memo = audio(inbox / "memo.wav", seconds=5)
    r = cli(cfg, "sync", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (inbox / "clip.mp4.caption.md").exists()
    assert (inbox / "memo.wav.transcript.txt").exists()

    proxies = sorted((tmp_path / "state" / "proxies").glob("*[!6]"))  # not the .sha256s
    sizes = {p.suffix: p.stat().st_size for p in proxies}
    assert set(sizes) == {".mp4", ".ogg"}
    assert not list(inbox.glob(".tmp-*")) and not list(inbox.glob("*.ogg"))  # not beside
    stats = emu.stats()
    # Each proxy went twice (the upload, then its renewal); no original went at all.
    assert stats["uploads_finalized"] == 4
    assert stats["bytes_received"] == 2 * (sizes[".mp4"] + sizes[".ogg"])
    assert sizes[".mp4"] < clip.stat().st_size / 2 and sizes[".ogg"] < memo.stat().st_size / 10
    assert sorted(f["mimeType"] for f in emu.list_files()) == ["audio/ogg", "video/mp4"]
    # The remote copy is identified by the original's hash all the same.
    assert {r[0] for r in db_rows(cfg, "SELECT sha256 FROM paths")} == {
        r[0] for r in db_rows(cfg, "SELECT sha256 FROM contents")}

    status = json.loads(cli(cfg, "status", "--json").stdout)
    by_name = {f["path"].rsplit("/", 1)[1]: f for f in status["files"]}
    assert by_name["clip.mp4"]["state"] == "synced"
    assert by_name["clip.mp4"]["proxy"].startswith("uploaded as a proxy (")
    assert by_name["memo.wav"]["proxy"].endswith(f"of {human_bytes(memo.stat().st_size)})")
    assert "uploaded as a proxy" in cli(cfg, "status").stdout


def test_a_broken_video_falls_back_to_its_original_and_both_reasons_are_its_verdict(
        tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url, folder_extra='upload = "proxy"')
    inbox = tmp_path / "inbox"
    # Looks like MP4 to the service, but no decoder reads it: the proxy fails, the
    # original is uploaded and captioned.
    (inbox / "odd.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"odd" * 3000)
    # Not video at all: no proxy, and the service cannot process the original either.
    (inbox / "junk.mp4").write_bytes(b"junk" * 3000)
    r = cli(cfg, "sync", timeout=180)
    assert r.returncode == 1, r.stdout + r.stderr  # junk.mp4 failed
    assert "no upload proxy could be made" in r.stderr
    assert (inbox / "odd.mp4.caption.md").exists()
    assert not (inbox / "junk.mp4.caption.md").exists()
    status = json.loads(cli(cfg, "status", "--json").stdout)
    junk = next(f for f in status["files"] if f["path"].endswith("junk.mp4"))
    assert junk["state"] == "failed"
    assert "the service could not process it" in junk["message"]
    assert "no upload proxy could be made either (InvalidDataError" in junk["message"]
    assert not list((tmp_path / "state" / "proxies").glob(".tmp-*"))
