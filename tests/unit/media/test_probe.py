"""Durations read from audio headers (mediasync.media.probe), on bytes built here and on
files ffmpeg writes; and metadata.duration reading past a cover-art ID3v2 tag."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from mediasync.media import metadata
from mediasync.media.probe import id3v2_size, probe

# MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding, joint stereo: 417-byte frames.
MP3_HEADER = b"\xff\xfb\x90\x44"
MP3_FRAME = MP3_HEADER + bytes(417 - 4)


def id3v2(payload: int) -> bytes:
    """An ID3v2.3 tag whose body is `payload` zero bytes (size as 28-bit syncsafe)."""
    syncsafe = bytes((payload >> s) & 0x7F for s in (21, 14, 7, 0))
    return b"ID3\x03\x00\x00" + syncsafe + bytes(payload)


def xing_frame(frames: int) -> bytes:
    # The Xing header sits after the 4-byte header and 32 bytes of side info (MPEG-1 stereo).
    body = bytes(32) + b"Xing" + struct.pack(">II", 1, frames)
    return MP3_HEADER + body + bytes(417 - 4 - len(body))


def mp3_probe(data: bytes) -> float | None:
    return probe("audio/mp3", data[: 64 * 1024], data[-64 * 1024 :], len(data)).duration


def test_cbr_mp3_duration_is_size_times_8_over_bitrate():
    data = MP3_FRAME * 1000
    assert mp3_probe(data) == pytest.approx(1000 * 417 * 8 / 128_000)


def test_an_id3v2_tag_is_not_counted_as_audio():
    tag = id3v2(5000)
    assert id3v2_size(tag + MP3_FRAME) == len(tag)
    data = tag + MP3_FRAME * 1000
    assert mp3_probe(data) == pytest.approx(1000 * 417 * 8 / 128_000)


def test_an_id3v1_trailer_is_not_counted_as_audio():
    data = MP3_FRAME * 1000 + b"TAG" + bytes(125)
    assert mp3_probe(data) == pytest.approx(1000 * 417 * 8 / 128_000)


def test_a_xing_frame_count_wins_over_the_file_size():
    # 2000 frames declared, fewer present at 128 kbit/s: a VBR file's average differs.
    data = xing_frame(2000) + MP3_FRAME * 10
    assert mp3_probe(data) == pytest.approx(2000 * 1152 / 44100)


def test_a_vbri_frame_count_is_read():
    body = bytes(32) + b"VBRI" + struct.pack(">HHHII", 1, 0, 75, 0, 3000)
    data = MP3_HEADER + body + bytes(417 - 4 - len(body)) + MP3_FRAME * 10
    assert mp3_probe(data) == pytest.approx(3000 * 1152 / 44100)


def test_a_stray_sync_word_in_junk_does_not_set_the_bitrate():
    # 0xFFE3 looks like a frame header (MPEG-2.5, 8 kbit/s) but no frame follows it.
    data = b"\xff\xe3\x18\x00" + bytes(100) + MP3_FRAME * 1000
    assert mp3_probe(data) == pytest.approx((len(data) - 104) * 8 / 128_000)


def test_a_first_frame_beyond_the_head_is_unknown_not_guessed():
    tag = id3v2(200_000)
    data = tag + MP3_FRAME * 100
    assert mp3_probe(data) is None


def test_mediainfo_reads_past_a_cover_art_tag(tmp_path):
    path = tmp_path / "episode.mp3"
    path.write_bytes(id3v2(3_000_000) + MP3_FRAME * 1000)
    assert metadata.duration(path, "audio/mp3") == pytest.approx(1000 * 417 * 8 / 128_000)


@pytest.mark.parametrize("data", [
    b"", b"ID3", b"\xff\xfb", b"ID3\x03\x00\x00\x7f\x7f\x7f\x7f", bytes(1000),
    b"\xff\xff\xff\xff" * 300, MP3_HEADER, b"fLaC\x00\x00\x00\x22" + bytes(5),
    b"OggS\x00\x02" + bytes(30), b"OggS" + bytes(22) + b"\x01\x1e\x01vorbis",
])
@pytest.mark.parametrize("mime", ["audio/mp3", "audio/flac", "audio/ogg"])
def test_damaged_headers_answer_none(mime, data):
    assert probe(mime, data, data, len(data)).duration is None


def streaminfo(rate: int, total: int) -> bytes:
    bits = rate << 44 | 1 << 41 | 15 << 36 | total  # stereo, 16-bit
    return struct.pack(">HH", 4096, 4096) + bytes(6) + bits.to_bytes(8, "big") + bytes(16)


def test_flac_duration_is_total_samples_over_rate():
    data = b"fLaC" + b"\x80\x00\x00\x22" + streaminfo(48000, 48000 * 90 + 24000) + bytes(100)
    assert probe("audio/flac", data, data, len(data)).duration == pytest.approx(90.5)


def test_flac_with_unknown_total_samples_is_unknown():
    data = b"fLaC" + b"\x80\x00\x00\x22" + streaminfo(44100, 0)
    assert probe("audio/flac", data, data, len(data)).duration is None


def ogg_page(granule: int, packet: bytes, serial: int = 7, flags: int = 0) -> bytes:
    segments = [255] * (len(packet) // 255) + [len(packet) % 255]
    return (b"OggS\x00" + bytes([flags]) + struct.pack("<qIII", granule, serial, 0, 0)
            + bytes([len(segments)]) + bytes(segments) + packet)


def test_ogg_vorbis_duration_is_last_granule_over_rate():
    ident = b"\x01vorbis" + struct.pack("<IBIiii", 0, 2, 44100, 0, 128000, 0) + b"\xb8\x01"
    data = (ogg_page(0, ident, flags=2) + ogg_page(-1, bytes(4000))
            + ogg_page(44100 * 61, bytes(300)) + ogg_page(-1, bytes(50), serial=9))
    assert probe("audio/ogg", data, data[-5000:], len(data)).duration == pytest.approx(61)


def test_ogg_opus_counts_48khz_less_pre_skip():
    # Input rate says 16 kHz; Opus granules are 48 kHz all the same.
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 16000, 0, 0)
    data = ogg_page(0, head, flags=2) + ogg_page(48000 * 10 + 312, bytes(200), flags=4)
    assert probe("audio/ogg", data, data, len(data)).duration == pytest.approx(10)


def test_ogg_without_a_last_granule_is_unknown():
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    data = ogg_page(0, head, flags=2) + ogg_page(-1, bytes(200))
    assert probe("audio/ogg", data, data, len(data)).duration is None


FFMPEG_CASES = {
    "cbr.mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    "vbr.mp3": ["-c:a", "libmp3lame", "-q:a", "4"],
    "cover.mp3": ["-c:a", "libmp3lame", "-b:a", "96k"],  # plus cover art, below
    "a.flac": ["-c:a", "flac"],
    "vorbis.ogg": ["-c:a", "libvorbis"],
    "opus.ogg": ["-c:a", "libopus"],
}
MIMES = {".mp3": "audio/mp3", ".flac": "audio/flac", ".ogg": "audio/ogg"}


@pytest.mark.parametrize("name", sorted(FFMPEG_CASES))
def test_durations_agree_with_ffmpeg(tmp_path, name):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install -y ffmpeg; .ci/run installs it)")
    path = tmp_path / name
    ffmpeg = ["ffmpeg", "-v", "error", "-y"]
    cmd = [*ffmpeg, "-f", "lavfi", "-i", "sine=frequency=440:duration=7.3"]
    if name == "cover.mp3":
        # Noise compresses badly: a PNG of some 300 KB, as an attached picture (APIC).
        cover = tmp_path / "cover.png"
        _run([*ffmpeg, "-f", "lavfi", "-i", "color=s=320x320,geq=random(1)*255:128:128",
              "-frames:v", "1", str(cover)])
        cmd += ["-i", str(cover), "-map", "0:a", "-map", "1:v", "-c:v", "copy",
                "-disposition:v", "attached_pic"]
    _run([*cmd, *FFMPEG_CASES[name], str(path)])
    if name == "cover.mp3":
        assert id3v2_size(path.read_bytes()) > 64 * 1024  # the tag really pushes the frame out
    got = metadata.duration(Path(path), MIMES[path.suffix])
    assert got == pytest.approx(7.3, abs=0.06)


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
