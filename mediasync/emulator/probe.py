"""Magic-byte sniffing and cheap probes (dimensions, durations) on an upload's
first and last few KiB: the emulator never keeps a file's bytes."""

from __future__ import annotations

import struct
from dataclasses import dataclass

KEEP_BYTES = 64 * 1024  # how much of the head and of the tail an upload keeps

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"heif"}
_ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


@dataclass(frozen=True)
class Probe:
    width: int | None = None
    height: int | None = None
    duration: float | None = None  # seconds


def _riff(head: bytes, form: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == form


def _ftyp_brands(head: bytes) -> set[bytes]:
    if head[4:8] != b"ftyp":
        return set()
    size = struct.unpack(">I", head[:4])[0]
    end = min(max(size, 16), len(head))
    brands = {head[8:12]}
    brands.update(head[i : i + 4] for i in range(16, end - 3, 4))
    return brands


def _mp3(head: bytes) -> bool:
    return head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _adts(head: bytes) -> bool:
    return len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0


def sniff(mime: str, head: bytes) -> bool:
    """Whether the first bytes look like the media the MIME type claims."""
    checks = {
        "image/png": lambda: head.startswith(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg": lambda: head.startswith(b"\xff\xd8\xff"),
        "image/webp": lambda: _riff(head, b"WEBP"),
        "image/heic": lambda: bool(_ftyp_brands(head) & _HEIF_BRANDS),
        "image/heif": lambda: bool(_ftyp_brands(head) & _HEIF_BRANDS),
        "audio/wav": lambda: _riff(head, b"WAVE"),
        "audio/mp3": lambda: _mp3(head),
        "audio/aiff": lambda: head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"),
        "audio/aac": lambda: _adts(head) or head[:4] == b"ADIF" or head[:3] == b"ID3",
        "audio/ogg": lambda: head[:4] == b"OggS",
        "audio/flac": lambda: head[:4] == b"fLaC" or head[:3] == b"ID3",
        "video/mp4": lambda: head[4:8] in _ISO_BOXES,
        "video/mov": lambda: head[4:8] in _ISO_BOXES,
        "video/3gpp": lambda: head[4:8] in _ISO_BOXES,
        "video/mpeg": lambda: head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"),
        "video/mpg": lambda: head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"),
        "video/avi": lambda: _riff(head, b"AVI "),
        "video/x-flv": lambda: head[:3] == b"FLV",
        "video/webm": lambda: head[:4] == b"\x1a\x45\xdf\xa3",
        "video/wmv": lambda: head[:4] == b"\x30\x26\xb2\x75",
    }
    check = checks.get(mime)
    return bool(check and check())


def probe(mime: str, head: bytes, tail: bytes, size: int) -> Probe:
    """Best-effort facts for the generated text and token counts; unknown → None."""
    try:
        if mime == "image/png" and head[12:16] == b"IHDR":
            w, h = struct.unpack(">II", head[16:24])
            return Probe(width=w, height=h)
        if mime == "image/jpeg":
            return _jpeg(head)
        if mime == "image/webp":
            return _webp(head)
        if mime == "audio/wav":
            return Probe(duration=_wav_duration(head, size))
        if mime in ("video/mp4", "video/mov", "video/3gpp"):
            return Probe(duration=_mp4_duration(head, tail, size))
    except (struct.error, IndexError, ZeroDivisionError):
        pass  # a truncated or odd header: simply unknown
    return Probe()


def _jpeg(b: bytes) -> Probe:
    i = 2
    while i + 9 < len(b):
        if b[i] != 0xFF:
            i += 1
            continue
        marker = b[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        seg_len = struct.unpack(">H", b[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", b[i + 5 : i + 9])
            return Probe(width=w, height=h)
        i += 2 + seg_len
    return Probe()


def _webp(b: bytes) -> Probe:
    chunk = b[12:16]
    if chunk == b"VP8 " and b[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", b[26:30])
        return Probe(width=w & 0x3FFF, height=h & 0x3FFF)
    if chunk == b"VP8L" and b[20] == 0x2F:
        bits = int.from_bytes(b[21:25], "little")
        return Probe(width=(bits & 0x3FFF) + 1, height=((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        w = int.from_bytes(b[24:27], "little") + 1
        h = int.from_bytes(b[27:30], "little") + 1
        return Probe(width=w, height=h)
    return Probe()


def _wav_duration(b: bytes, size: int) -> float | None:
    i, byte_rate = 12, 0
    while i + 8 <= len(b):
        cid, clen = b[i : i + 4], struct.unpack("<I", b[i + 4 : i + 8])[0]
        if cid == b"fmt ":
            byte_rate = struct.unpack("<I", b[i + 16 : i + 20])[0]
        elif cid == b"data":
            if not byte_rate:
                return None
            # Streaming writers leave 0 or 0xFFFFFFFF: fall back on the file size.
            avail = size - (i + 8)
            data = clen if 0 < clen <= avail else avail
            return data / byte_rate
        i += 8 + clen + (clen & 1)
    return None


def _mp4_duration(head: bytes, tail: bytes, size: int) -> float | None:
    tail_start = size - len(tail)

    def window(off: int, n: int) -> bytes:
        # Whatever of [off, off + n) the kept head or tail holds (may be short).
        if off < len(head):
            return head[off : off + n]
        if off >= tail_start:
            return tail[off - tail_start : off - tail_start + n]
        return b""

    off = 0
    while off + 8 <= size:
        hdr = window(off, 16)
        if len(hdr) < 8:
            return None
        box_size, kind = struct.unpack(">I4s", hdr[:8])
        if box_size == 1 and len(hdr) >= 16:
            box_size = struct.unpack(">Q", hdr[8:16])[0]
        elif box_size == 0:
            box_size = size - off
        if kind == b"moov":
            return _mvhd_duration(window(off, min(box_size, 4096)))
        if box_size < 8:
            return None
        off += box_size
    return None


def _mvhd_duration(moov: bytes) -> float | None:
    i = moov.find(b"mvhd")
    if i < 0:
        return None
    p = i + 4
    if moov[p] == 1:
        timescale, duration = struct.unpack(">IQ", moov[p + 20 : p + 32])
    else:
        timescale, duration = struct.unpack(">II", moov[p + 12 : p + 20])
    return duration / timescale if timescale else None
