"""Magic-byte sniffing and cheap probes (dimensions, durations) on a file's first
and last few KiB (its head and tail): pure, bytes in and values out.

Shared by the daemon (metadata.py: {duration}, subtitle clamping) and the emulator
(token counts, videoMetadata), which keeps only those windows of an upload.
Unknown, truncated or damaged headers answer None, never an exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

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
        if mime == "audio/mp3":
            return Probe(duration=_mp3_duration(head, tail, size))
        if mime == "audio/flac":
            return Probe(duration=_flac_duration(head))
        if mime == "audio/ogg":
            return Probe(duration=_ogg_duration(head, tail))
    except (struct.error, IndexError, ZeroDivisionError, ValueError):
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


def id3v2_size(head: bytes) -> int:
    """Bytes taken by the ID3v2 tag(s) at the start of head (0 if none).

    May exceed len(head): cover art makes tags of megabytes, and the caller then
    probes from that offset instead (the audio does not depend on what precedes it).
    """
    off = 0
    # A writer may stack tags; each declares its size as a 28-bit syncsafe integer.
    while head[off : off + 3] == b"ID3" and len(head) >= off + 10:
        b = head[off + 6 : off + 10]
        if any(x & 0x80 for x in b) or head[off + 3] == 0xFF:
            break  # not syncsafe: not a tag
        n = b[0] << 21 | b[1] << 14 | b[2] << 7 | b[3]
        footer = 10 if head[off + 5] & 0x10 else 0
        off += 10 + n + footer
    return off


# MPEG audio frame header tables, by version (1, 2, 2.5) and layer (1, 2, 3); kbit/s.
_BITRATES = {
    (1, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_BITRATES[(2, 3)] = _BITRATES[(2, 2)]
_SAMPLE_RATES = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 25: (11025, 12000, 8000)}


@dataclass(frozen=True)
class _Frame:
    version: int  # 1, 2 or 25 (MPEG 2.5)
    layer: int
    bitrate: int  # bit/s
    sample_rate: int
    samples: int  # per frame
    length: int  # bytes, padding included
    mono: bool


def _mpeg_frame(b: bytes, i: int) -> _Frame | None:
    """The MPEG audio frame header at b[i:i+4], or None if it is not a valid one."""
    if i + 4 > len(b) or b[i] != 0xFF or b[i + 1] & 0xE0 != 0xE0:
        return None
    version = {0: 25, 2: 2, 3: 1}.get(b[i + 1] >> 3 & 3)
    layer = {1: 3, 2: 2, 3: 1}.get(b[i + 1] >> 1 & 3)
    br_index, sr_index = b[i + 2] >> 4, b[i + 2] >> 2 & 3
    if version is None or layer is None or br_index in (0, 15) or sr_index == 3:
        return None  # reserved values, or free format (no bitrate to count with)
    bitrate = _BITRATES[(min(version, 2), layer)][br_index - 1] * 1000
    rate = _SAMPLE_RATES[version][sr_index]
    pad = b[i + 2] >> 1 & 1
    if layer == 1:
        samples, length = 384, (12 * bitrate // rate + pad) * 4
    else:
        samples = 576 if layer == 3 and version != 1 else 1152
        length = samples // 8 * bitrate // rate + pad
    return _Frame(version, layer, bitrate, rate, samples, length, b[i + 3] >> 6 == 3)


def _first_frame(b: bytes) -> tuple[int, _Frame] | None:
    """The first frame whose successor (where b holds it) is also a frame header:
    a lone 0xFFE in padding or junk must not set the bitrate."""
    i = b.find(b"\xff")
    while 0 <= i < len(b) - 3:
        frame = _mpeg_frame(b, i)
        if frame:
            nxt = i + frame.length
            if nxt + 4 > len(b) or _mpeg_frame(b, nxt):
                return i, frame
        i = b.find(b"\xff", i + 1)
    return None


def _mp3_duration(head: bytes, tail: bytes, size: int) -> float | None:
    start = id3v2_size(head)
    if start + 4 > len(head):
        return None  # the first frame lies beyond what we were given: unknown, not guessed
    found = _first_frame(head[start:])
    if found is None:
        return None
    at, f = found
    at += start
    frame = head[at : at + f.length]
    # A VBR file's first frame is a Xing ("Info" when CBR) or VBRI header holding
    # the frame count; without one, the stream is taken as CBR at the first bitrate.
    side = (32 if not f.mono else 17) if f.version == 1 else (17 if not f.mono else 9)
    x = 4 + side
    frames = None
    if frame[x : x + 4] in (b"Xing", b"Info"):
        flags = struct.unpack(">I", frame[x + 4 : x + 8])[0]
        if flags & 1:
            frames = struct.unpack(">I", frame[x + 8 : x + 12])[0]
    elif frame[36:40] == b"VBRI":
        frames = struct.unpack(">I", frame[50:54])[0]
    if frames:
        return frames * f.samples / f.sample_rate
    audio = size - at
    if audio < f.length:
        return None  # not even one whole frame: a stub, not a stream
    if len(tail) >= 128 and tail[-128:-125] == b"TAG":
        audio -= 128  # ID3v1 trailer
    return audio * 8 / f.bitrate


def _flac_duration(head: bytes) -> float | None:
    b = head[id3v2_size(head) :]
    # STREAMINFO is always the first metadata block (type 0) after the magic.
    if b[:4] != b"fLaC" or b[4] & 0x7F != 0:
        return None
    return _streaminfo_duration(b[8:42])


def _streaminfo_duration(info: bytes) -> float | None:
    if len(info) < 18:
        return None
    bits = int.from_bytes(info[10:18], "big")
    rate, total = bits >> 44, bits & 0xFFFFFFFFF
    return total / rate if rate and total else None  # total 0: the encoder did not know


def _ogg_pages(b: bytes):
    """(offset, granule, serial, first packet bytes) of each page header found in b."""
    i = b.find(b"OggS")
    while i >= 0:
        if len(b) >= i + 27 and b[i + 4] == 0:
            granule, serial = struct.unpack("<qI", b[i + 6 : i + 18])
            nsegs = b[i + 26]
            body = i + 27 + nsegs
            yield i, granule, serial, b[body : body + sum(b[i + 27 : body])]
        i = b.find(b"OggS", i + 1)


def _ogg_duration(head: bytes, tail: bytes) -> float | None:
    first = next(_ogg_pages(head), None)
    if first is None or first[0] != 0:
        return None
    _, _, serial, packet = first
    if packet[:7] == b"\x01vorbis":
        rate, skip = struct.unpack("<I", packet[12:16])[0], 0
    elif packet[:8] == b"OpusHead":
        # Opus granules always count 48 kHz samples; pre-skip samples are not played.
        rate, skip = 48000, struct.unpack("<H", packet[10:12])[0]
    elif packet[:5] == b"\x7fFLAC" and packet[9:13] == b"fLaC":
        return _streaminfo_duration(packet[17:35])
    else:
        return None
    # The last page of this stream that ends a packet (-1: none ends on it) holds
    # the stream's total sample count.
    granules = [g for _, g, s, _ in _ogg_pages(tail) if s == serial and g >= 0]
    if not granules or not rate:
        return None
    samples = granules[-1] - skip
    return samples / rate if samples > 0 else None
