import io
import struct
import wave
import zlib

import pytest

from mediasync.media.samples import mp4_bytes, png_bytes, wav_bytes, write_samples


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data)
    return chunks


@pytest.mark.parametrize("width,height", [(64, 48), (1, 1), (5, 300)])
def test_png_structure(width, height):
    chunks = png_chunks(png_bytes(width, height, seed=3))
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    w, h, depth, color, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (w, h, depth, color, comp, filt, interlace) == (width, height, 8, 2, 0, 0, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (1 + 3 * width)
    assert all(raw[y * (1 + 3 * width)] == 0 for y in range(height))


def test_png_is_a_gradient():
    chunks = png_chunks(png_bytes(16, 16))
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    pixels = {raw[i : i + 3] for y in range(16) for i in range(y * 49 + 1, y * 49 + 49, 3)}
    assert len(pixels) > 100


def test_png_seeds_differ_and_are_deterministic():
    assert png_bytes(seed=1) == png_bytes(seed=1)
    assert len({png_bytes(seed=s) for s in range(20)}) == 20
    assert png_bytes(seed=0) != png_bytes(seed=256)


def test_png_rejects_bad_size():
    with pytest.raises(ValueError):
        png_bytes(0, 10)


@pytest.mark.parametrize("seconds,rate", [(1.0, 16000), (0.25, 8000), (0.0, 16000)])
def test_wav_duration(seconds, rate):
    with wave.open(io.BytesIO(wav_bytes(seconds, rate=rate))) as w:
        assert w.getnchannels() == 1
        assert w.getsampwidth() == 2
        assert w.getframerate() == rate
        assert w.getnframes() / w.getframerate() == pytest.approx(seconds)


def test_wav_is_a_tone():
    with wave.open(io.BytesIO(wav_bytes(0.1, freq=440))) as w:
        frames = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    assert max(samples) > 10000 and min(samples) < -10000


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, bytes]]:
    end = len(data) if end is None else end
    pos, out = start, []
    while pos < end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        assert size >= 8 and pos + size <= end, kind
        out.append((kind, data[pos + 8 : pos + size]))
        pos += size
    assert pos == end
    return out


def mvhd_of(data: bytes) -> tuple[int, int, int]:
    top = dict(boxes(data))
    inner = dict(boxes(top[b"moov"]))
    body = inner[b"mvhd"]
    version = body[0]
    if version == 0:
        timescale, duration = struct.unpack_from(">II", body, 12)
    else:
        timescale, duration = struct.unpack_from(">IQ", body, 20)
    return version, timescale, duration


def test_mp4_structure_and_duration():
    data = mp4_bytes(2.0)
    top = boxes(data)
    assert [k for k, _ in top] == [b"ftyp", b"moov", b"mdat"]
    ftyp = top[0][1]
    assert ftyp[:4] == b"isom"
    assert b"isom" in ftyp[8:]
    assert len(top[2][1]) > 0
    inner = boxes(top[1][1])
    assert inner[0][0] == b"mvhd" and len(inner[0][1]) + 8 == 108
    assert mvhd_of(data) == (0, 1000, 2000)


def test_mp4_long_duration_uses_version_1():
    data = mp4_bytes(5_000_000.0)
    assert mvhd_of(data) == (1, 1000, 5_000_000_000)
    assert len(data) < 100_000


def test_mp4_seeds():
    assert mp4_bytes(seed=4) == mp4_bytes(seed=4)
    assert mp4_bytes(seed=4) != mp4_bytes(seed=5)
    assert mvhd_of(mp4_bytes(1.5, seed=9))[2] == 1500


def test_write_samples(tmp_path):
    paths = write_samples(tmp_path / "media")
    assert [p.name for p in paths] == ["photo.png", "memo.wav", "clip.mp4"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert sorted(p.name for p in (tmp_path / "media").iterdir()) == sorted(
        ["photo.png", "memo.wav", "clip.mp4"]
    )
    png_chunks(paths[0].read_bytes())
