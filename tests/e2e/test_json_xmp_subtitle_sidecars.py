"""End-to-end: JSON, XMP and subtitle sidecars from the real `mediasync sync` against
the emulator, read back by the libraries other tools use (exiv2, srt, webvtt, ffmpeg)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mediasync.emulator import Emulator
from mediasync.media.samples import mp4_bytes, png_bytes, wav_bytes
from tests.helpers import JPEG, cli, db_rows, write_config

pyexiv2 = pytest.importorskip("pyexiv2", reason="pyexiv2 (exiv2) reads the XMP back")
import srt  # noqa: E402
import webvtt  # noqa: E402

PROMPTS = """
[[folders.prompts]]
kinds = ["image"]
format = "json"
prompt = "Describe {filename} in {folder}."
sidecar = ".json"
[folders.prompts.schema]
type = "object"
required = ["title", "tags"]
properties.title = { type = "string" }
properties.tags = { type = "array", items = { type = "string" } }

[[folders.prompts]]
kinds = ["image"]
format = "xmp"
prompt = "Caption this photo and give keywords."
alt_text = true

[[folders.prompts]]
kinds = ["audio", "video"]
format = "subtitles"
prompt = "Transcribe the speech."
subtitles = ["srt", "vtt"]
language = "en"
"""


def _folder(tmp_path: Path, emu: Emulator) -> tuple[Path, Path]:
    cfg = write_config(tmp_path, emu.base_url, prompts=PROMPTS)
    inbox = tmp_path / "inbox"
    (inbox / "photo.png").write_bytes(png_bytes(seed=3))
    (inbox / "memo.wav").write_bytes(wav_bytes(1.5))
    (inbox / "clip.mp4").write_bytes(mp4_bytes(2.0, seed=3))
    return cfg, inbox


def _generates(emu: Emulator) -> int:
    return emu.stats()["requests"].get("generate", 0)


def test_sync_writes_json_xmp_and_subtitles_then_nothing_then_moves_them(tmp_path, emu):
    cfg, inbox = _folder(tmp_path, emu)
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr

    data = json.loads((inbox / "photo.png.json").read_text())
    assert set(data) == {"title", "tags"} and data["tags"] and "image/png" in data["title"]
    assert "Describe photo.png in inbox." in data["title"]  # placeholders filled

    img = pyexiv2.Image(str(inbox / "photo.png.xmp"))
    try:
        meta = img.read_xmp()
    finally:
        img.close()
    assert "image/png" in meta["Xmp.dc.description"]['lang="x-default"']
    assert meta["Xmp.dc.subject"] == ["image"]
    assert "image/png" in meta["Xmp.iptc.AltTextAccessibility"]['lang="x-default"']

    for stem, seconds in (("memo", 1.5), ("clip", 2.0)):
        cues = list(srt.parse((inbox / f"{stem}.en.srt").read_text()))
        assert len(cues) == 1 and cues[0].start.total_seconds() == 0
        assert cues[0].end.total_seconds() <= seconds
        vtt = webvtt.from_string((inbox / f"{stem}.en.vtt").read_text())
        assert [c.text for c in vtt.captions] == [cues[0].content]
    # .srt and .vtt of one language come from one answer; the JSON, the XMP and
    # two media: 4 calls.
    assert _generates(emu) == 4
    status = cli(cfg, "status").stdout
    assert "photo.png.xmp [xmp]: written" in status
    assert "clip.en.vtt [subtitles]: written" in status and "photo.png.json [json]" in status

    before = _generates(emu)
    snapshot = {p.name: p.stat().st_mtime_ns for p in inbox.iterdir()}
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert _generates(emu) == before
    assert {p.name: p.stat().st_mtime_ns for p in inbox.iterdir()} == snapshot

    (inbox / "clip.mp4").rename(inbox / "holiday.mp4")
    (inbox / "photo.png").rename(inbox / "beach.png")
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert (inbox / "holiday.en.srt").exists() and (inbox / "holiday.en.vtt").exists()
    assert not (inbox / "clip.en.srt").exists()
    assert (inbox / "beach.png.xmp").exists() and not (inbox / "photo.png.xmp").exists()
    assert _generates(emu) == before


def test_subtitles_parse_with_ffmpeg(tmp_path, emu):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install -y ffmpeg; .ci/run installs it)")
    cfg, inbox = _folder(tmp_path, emu)
    assert cli(cfg, "sync").returncode == 0
    for name in ("clip.en.srt", "clip.en.vtt"):
        out = tmp_path / f"{name}.ass"
        r = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(inbox / name), str(out)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and not r.stderr, r.stderr
        assert "Dialogue: 0,0:00:00.00,0:00:02.00" in out.read_text()


def test_an_answer_that_breaks_the_schema_is_asked_once_more_then_failed(tmp_path, emu):
    # The service ignores "pattern" (not in its schema subset), so its answer can break it.
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
    (tmp_path / "inbox" / "photo.png").write_bytes(png_bytes(seed=4))
    r = cli(cfg, "sync")
    assert r.returncode == 1
    assert not (tmp_path / "inbox" / "photo.png.json").exists()
    assert _generates(emu) == 2
    [(outcome, message, retry_at)] = db_rows(cfg, "SELECT outcome, message, retry_at FROM outputs")
    assert outcome == "failed" and retry_at is not None
    assert "does not match the schema at number" in message


def test_placeholders_reach_the_prompt_and_unknown_ones_stay(tmp_path, emu):
    prompts = """
[[folders.prompts]]
kinds = ["image"]
prompt = "{filename} in {folder} at {relpath}, taken {taken} at {gps};{duration}; {mood}"
sidecar = ".caption.md"
"""
    cfg = write_config(tmp_path, emu.base_url, prompts=prompts)
    trip = tmp_path / "inbox" / "trip"
    trip.mkdir()
    (trip / "paris.jpg").write_bytes(JPEG)
    img = pyexiv2.Image(str(trip / "paris.jpg"))
    img.modify_exif({"Exif.Photo.DateTimeOriginal": "2024:05:01 14:03:22",
                     "Exif.GPSInfo.GPSLatitudeRef": "N",
                     "Exif.GPSInfo.GPSLatitude": "48/1 51/1 3000/100",
                     "Exif.GPSInfo.GPSLongitudeRef": "E",
                     "Exif.GPSInfo.GPSLongitude": "2/1 17/1 4000/100"})
    img.close()
    (trip / "plain.jpg").write_bytes(JPEG)  # no EXIF: {taken} and {gps} come out empty
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert ("“paris.jpg in trip at trip/paris.jpg, taken 2024-05-01 14:03:22 at "
            "48.858333, 2.294444;; {mood}”") in (trip / "paris.jpg.caption.md").read_text()
    assert "“plain.jpg in trip at trip/plain.jpg, taken  at ;; {mood}”" in (
        trip / "plain.jpg.caption.md").read_text()


def test_two_media_sharing_a_stem_share_one_subtitle_and_say_whose_it_is(tmp_path, emu):
    """clip.mp4 and clip.wav both name clip.en.srt: the first written stays, and the
    second says whose it is (not "the owner's edit", which would be false)."""
    cfg = write_config(tmp_path, emu.base_url, prompts=PROMPTS)
    inbox = tmp_path / "inbox"
    (inbox / "clip.mp4").write_bytes(mp4_bytes(2.0, seed=4))
    (inbox / "clip.wav").write_bytes(wav_bytes(1.0))
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    text = (inbox / "clip.en.srt").read_text()
    status = json.loads(cli(cfg, "status", "--json").stdout)
    notes = [s["message"] for f in status["files"] for s in f["sidecars"]
             if s["name"] == "clip.en.srt" and s["outcome"] == "kept_edit"]
    assert len(notes) == 1 and "is clip." in notes[0] and "owner" not in notes[0], status
    assert "kept the owner's edit" not in r.stderr
    assert cli(cfg, "sync").returncode == 0
    assert (inbox / "clip.en.srt").read_text() == text  # neither overwrites the other
