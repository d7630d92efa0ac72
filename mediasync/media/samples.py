"""Small, valid sample media built in pure Python, for the demo, tests and benchmarks.

No ffmpeg or Pillow: PNG is zlib + struct, WAV goes through the wave module and
MP4 is a minimal ISO BMFF file (ftyp, moov/mvhd, mdat). Output is deterministic:
the same arguments give the same bytes (so content hashes are stable), and
different seeds give different bytes (so files are not deduplicated by accident).
"""

from __future__ import annotations

import array
import hashlib
import math
import os
import struct
import sys
import wave
import zlib
from io import BytesIO
from pathlib import Path

__all__ = ["png_bytes", "wav_bytes", "mp4_bytes", "write_samples"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    # The CRC covers the chunk type and data, not the length.
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    """An 8-bit RGB PNG with a gradient whose colours shift with ``seed``."""
    if not (1 <= width <= 2**31 - 1 and 1 <= height <= 2**31 - 1):
        raise ValueError(f"PNG dimensions must be 1..2^31-1, got {width}x{height}")
    # Seed-derived offsets; the tEXt chunk below makes every seed's bytes unique
    # even where offsets repeat (they are taken modulo 256).
    r0, g0, b0 = hashlib.sha256(f"png:{seed}".encode()).digest()[:3]
    sx = 255 / max(width - 1, 1)
    sy = 255 / max(height - 1, 1)
    sd = 255 / max(width + height - 2, 1)
    reds = bytes((r0 + int(x * sx)) % 256 for x in range(width))
    blues = bytes((b0 + int(d * sd)) % 256 for d in range(width + height - 1))

    # Slice assignment fills whole channels at once: a 4000x3000 image stays fast.
    raw = bytearray()
    row = bytearray(3 * width)
    row[0::3] = reds
    for y in range(height):
        row[1::3] = bytes(((g0 + int(y * sy)) % 256,)) * width
        row[2::3] = blues[y : y + width]
        raw.append(0)  # filter type 0 (None) for this scanline
        raw += row

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    text = b"Comment\0" + f"mediasync sample seed={seed}".encode()
    return b"".join(
        (
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", ihdr),
            _png_chunk(b"tEXt", text),
            _png_chunk(b"IDAT", zlib.compress(bytes(raw), 6)),
            _png_chunk(b"IEND", b""),
        )
    )


def wav_bytes(seconds: float = 1.0, freq: float = 440.0, rate: int = 16000) -> bytes:
    """A mono 16-bit PCM WAV holding a sine tone."""
    if seconds < 0 or rate <= 0:
        raise ValueError(f"need seconds >= 0 and rate > 0, got {seconds}, {rate}")
    frames = round(seconds * rate)
    step = 2 * math.pi * freq / rate
    amplitude = 0.5 * 32767  # half scale: audible, never clips
    samples = array.array("h", (int(amplitude * math.sin(step * i)) for i in range(frames)))
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    buf = BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _mvhd(timescale: int, duration: int) -> bytes:
    # ISO/IEC 14496-12 MovieHeaderBox; version 1 only when the duration needs 64 bits.
    if duration <= 0xFFFFFFFF:
        head = struct.pack(">B3xIIII", 0, 0, 0, timescale, duration)
    else:
        head = struct.pack(">B3xQQIQ", 1, 0, 0, timescale, duration)
    matrix = (0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)  # identity
    tail = (
        struct.pack(">iH10x", 0x00010000, 0x0100)  # rate 1.0, volume 1.0, reserved
        + struct.pack(">9i", *matrix)
        + bytes(24)  # pre_defined
        + struct.pack(">I", 1)  # next_track_ID
    )
    return _box(b"mvhd", head + tail)


def mp4_bytes(seconds: float = 2.0, seed: int = 0) -> bytes:
    """A minimal ISO BMFF file: ftyp (isom), moov/mvhd (timescale 1000), mdat.

    It has no tracks, so players show nothing, but the box structure is valid and
    a parser reading mvhd finds the duration.
    """
    if seconds < 0:
        raise ValueError(f"need seconds >= 0, got {seconds}")
    timescale = 1000
    duration = round(seconds * timescale)
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    moov = _box(b"moov", _mvhd(timescale, duration))
    # About 1 KiB per second, capped so long durations stay small.
    size = min(max(256, int(seconds * 1024)), 64 * 1024)
    mdat = _box(b"mdat", hashlib.shake_256(f"mp4:{seed}".encode()).digest(size))
    return ftyp + moov + mdat


def write_samples(directory: Path) -> list[Path]:
    """Write photo.png, memo.wav and clip.mp4 into ``directory``; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in (
        ("photo.png", png_bytes()),
        ("memo.wav", wav_bytes()),
        ("clip.mp4", mp4_bytes()),
    ):
        path = directory / name
        # Dot-prefixed temp name + rename: a watcher on the folder never sees half a file.
        tmp = directory / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
        paths.append(path)
    return paths
