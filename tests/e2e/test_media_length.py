"""Media longer than one request takes, through the real CLI against the emulator
(issue 18, item 10): the length is checked before anything is paid, and the reason
given; a video asked for in clips is never too long."""

from __future__ import annotations

import json

import srt

from mediasync.media.samples import mp4_bytes, wav_bytes
from tests.helpers import cli, db_rows, write_config

SUBTITLES_AND_CAPTION = """
[[folders.prompts]]
kinds = ["video"]
format = "subtitles"
prompt = "Transcribe the speech."
subtitles = ["srt"]
language = "en"

[[folders.prompts]]
kinds = ["video"]
prompt = "Describe this video in a few sentences."
sidecar = ".caption.md"
"""


def _requests(emu) -> dict:
    return emu.stats()["requests"]


def test_a_two_hour_video_is_neither_uploaded_nor_paid_for_and_says_why(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url)  # the built-in caption of videos
    (tmp_path / "inbox" / "film.mp4").write_bytes(mp4_bytes(2 * 3600, seed=10))
    r = cli(cfg, "sync")
    assert r.returncode == 1
    assert _requests(emu).get("generate", 0) == 0
    assert _requests(emu).get("start", 0) == 0  # not even uploaded: nothing could use it
    [(outcome, message, retry_at)] = db_rows(cfg, "SELECT outcome, message, retry_at "
                                                  "FROM outputs")
    assert outcome == "failed" and retry_at is None
    assert message.startswith("too long: 2 h of video; one request takes at most 1 h of video")
    assert "ranges" in message  # the way out, by name
    st = json.loads(cli(cfg, "status", "--json").stdout)
    [f] = st["files"]
    assert f["state"] == "failed" and "too long: 2 h of video" in f["message"]
    assert cli(cfg, "sync").returncode == 1  # a verdict: no retry, nothing paid
    assert _requests(emu).get("generate", 0) == 0


def test_ten_hours_of_audio_is_too_long_whatever_ranges_say(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url)  # the built-in transcript, ranges = "auto"
    (tmp_path / "inbox" / "day.wav").write_bytes(wav_bytes(10 * 3600, freq=1, rate=10))
    assert cli(cfg, "sync").returncode == 1
    assert _requests(emu).get("generate", 0) == 0
    [(message,)] = db_rows(cfg, "SELECT message FROM outputs")
    assert message.startswith("too long: 10 h of audio; one request takes at most 9 h 30 min")


def test_a_long_video_in_clips_gets_its_subtitles_and_the_caption_says_why_not(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url, prompts=SUBTITLES_AND_CAPTION)
    (tmp_path / "inbox" / "film.mp4").write_bytes(mp4_bytes(90 * 60, seed=11))
    r = cli(cfg, "sync", timeout=300)
    assert r.returncode == 1  # the caption cannot be had
    # Subtitles: two clips of 45 minutes, each within what one request takes.
    assert _requests(emu)["generate"] == 2
    cues = list(srt.parse((tmp_path / "inbox" / "film.en.srt").read_text()))
    assert cues[0].start.total_seconds() == 0 and cues[-1].end.total_seconds() == 5400
    rows = dict(db_rows(cfg, "SELECT suffix, outcome FROM outputs"))
    assert rows == {".caption.md": "failed", "*.en.srt": "written"}
