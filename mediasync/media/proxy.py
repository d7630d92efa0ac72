"""Upload proxies: what the model needs of a video or an audio file, far smaller.

Gemini samples video at one frame a second, each frame at a fixed token budget
(258 tokens at the default resolution: it never sees 4K), and hears audio at
16 kbps. So a proxy is video scaled to at most 720p (360p for
``media_resolution = "low"``), at most 10 frames a second, about 1 Mbit/s, with a
16 kHz mono AAC track, in MP4 (``video/mp4``); or audio as 16 kHz mono Opus in Ogg
(``audio/ogg``). Both containers are among the service's MIME types (files-api.md).
Timestamps are kept, so subtitles and "{duration}" mean the same as the original's.

Encoded with PyAV (``av``: its wheels bundle FFmpeg with libx264 and libopus, so a
fresh machine needs no system package, and a failure is a Python exception with a
reason, not an exit code to parse). :func:`make` writes to the path it is given;
the caller (local/proxies.py) gives a temporary name and renames it once complete.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from mediasync.media.formats import GB, MAX_FILE_BYTES

MB = 1000**2

# "auto" sends the original except video over the service's 2 GB limit and media
# above these sizes, where a proxy is a small fraction of the bytes: a minute of
# 1080p phone video is about 100 MB (its proxy about 8 MB); 25 MB is about half an
# hour of 128 kbps MP3 (its proxy about 5 MB).
AUTO_VIDEO_ABOVE = 100 * MB
AUTO_AUDIO_ABOVE = 25 * MB

VIDEO_HEIGHT = 720
LOW_HEIGHT = 360  # media_resolution = "low"
MAX_FPS = 10  # the model takes one frame a second; 10 keeps motion readable
VIDEO_BITRATE = 1_000_000
AUDIO_RATE = 16_000
AUDIO_BITRATE = 24_000  # mono speech at 16 kHz; the model hears 16 kbps
VIDEO_MIME = "video/mp4"
AUDIO_MIME = "audio/ogg"

__all__ = ["AUTO_AUDIO_ABOVE", "AUTO_VIDEO_ABOVE", "GB", "ProxyFailed", "Spec", "make",
           "wants_proxy"]


class ProxyFailed(Exception):
    """The file could not be read as media, or not encoded: a verdict on its bytes."""


@dataclass(frozen=True)
class Spec:
    """What a proxy is made of: kind and, for video, the tallest frame."""

    kind: str  # "video" or "audio"
    height: int = VIDEO_HEIGHT

    @property
    def mime(self) -> str:
        return VIDEO_MIME if self.kind == "video" else AUDIO_MIME

    @property
    def suffix(self) -> str:
        return f".{self.height}p.mp4" if self.kind == "video" else ".16k.ogg"


def wants_proxy(kind: str, size: int, mode: str, media_resolution: str | None = None
                ) -> Spec | None:
    """The proxy to upload instead of the original, or None. ``mode`` is the file's
    ``upload`` setting: "original", "proxy" or "auto". Pure."""
    if kind not in ("video", "audio") or mode == "original":
        return None
    height = LOW_HEIGHT if media_resolution == "low" else VIDEO_HEIGHT
    spec = Spec(kind, height if kind == "video" else 0)
    if mode == "proxy" or size > MAX_FILE_BYTES:
        return spec
    above = AUTO_VIDEO_ABOVE if kind == "video" else AUTO_AUDIO_ABOVE
    return spec if size > above else None


def make(src: str | Path, dst: str | Path, spec: Spec) -> tuple[int, str]:
    """Encode ``src`` into ``dst`` as ``spec`` says; returns (size, SHA-256 hex) of
    ``dst``. Raises ProxyFailed for input it cannot read or encode, OSError for the
    file system's faults (a full disk: transient)."""
    import av  # only a daemon that makes proxies pays for loading FFmpeg

    try:
        if spec.kind == "video":
            _video(av, str(src), str(dst), spec.height)
        else:
            _audio(av, str(src), str(dst))
    except av.FFmpegError as e:
        if isinstance(e, OSError) and e.errno in _FS_ERRNOS:
            raise OSError(e.errno, e.strerror) from e  # a full disk, not the file's fault
        raise ProxyFailed(f"{type(e).__name__}: {e}") from e
    except (ValueError, IndexError, StopIteration, ZeroDivisionError) as e:
        raise ProxyFailed(str(e) or type(e).__name__) from e
    digest = hashlib.sha256()
    with open(dst, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
        size = f.tell()
    if size == 0:
        raise ProxyFailed("the proxy came out empty")
    return size, digest.hexdigest()


_FS_ERRNOS = frozenset({28, 30, 13, 5, 122})  # ENOSPC, EROFS, EACCES, EIO, EDQUOT


def _even(n: float) -> int:
    return max(2, int(n) // 2 * 2)


def _video(av, src: str, dst: str, height: int) -> None:  # noqa: ANN001 - the av module
    with av.open(src) as inp:
        if not inp.streams.video:
            raise ProxyFailed("no video stream")
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if inp.streams.audio else None
        vin.thread_type = "AUTO"
        w, h = vin.codec_context.width, vin.codec_context.height
        if not w or not h:
            raise ProxyFailed("the video stream has no frame size")
        scale = min(1.0, height / h)
        ow, oh = _even(w * scale), _even(h * scale)
        with av.open(dst, "w", format="mp4") as out:
            vout = out.add_stream("libx264", rate=MAX_FPS)
            vout.width, vout.height, vout.pix_fmt = ow, oh, "yuv420p"
            vout.bit_rate = VIDEO_BITRATE
            vout.codec_context.time_base = Fraction(1, 1000)
            vout.options = {"preset": "veryfast", "maxrate": str(VIDEO_BITRATE),
                            "bufsize": str(2 * VIDEO_BITRATE)}
            aout = resampler = None
            if ain is not None:
                aout = out.add_stream("aac", rate=AUDIO_RATE)
                aout.layout = "mono"
                aout.bit_rate = 32_000
                resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE)
            last = None
            streams = [s for s in (vin, ain) if s is not None]
            for packet in inp.demux(*streams):
                for frame in packet.decode():
                    if packet.stream is vin:
                        t = frame.time
                        if t is None or (last is not None and t < last + 1 / MAX_FPS):
                            continue  # at most MAX_FPS frames a second, times kept
                        last = t
                        small = frame.reformat(width=ow, height=oh, format="yuv420p")
                        small.pts, small.time_base = round(t * 1000), Fraction(1, 1000)
                        out.mux(vout.encode(small))
                    elif aout is not None and resampler is not None:
                        for f in resampler.resample(frame):
                            out.mux(aout.encode(f))
            out.mux(vout.encode(None))
            if aout is not None:
                out.mux(aout.encode(None))
            if last is None:
                raise ProxyFailed("no video frame could be decoded")


def _audio(av, src: str, dst: str) -> None:  # noqa: ANN001 - the av module
    with av.open(src) as inp:
        if not inp.streams.audio:
            raise ProxyFailed("no audio stream")
        ain = inp.streams.audio[0]
        with av.open(dst, "w", format="ogg") as out:
            aout = out.add_stream("libopus", rate=AUDIO_RATE)
            aout.layout = "mono"
            aout.bit_rate = AUDIO_BITRATE
            resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE,
                                          frame_size=320)  # 20 ms: what Opus takes
            got = False
            for frame in inp.decode(ain):
                for f in resampler.resample(frame):
                    got = True
                    out.mux(aout.encode(f))
            for f in resampler.resample(None):
                out.mux(aout.encode(f))
            out.mux(aout.encode(None))
            if not got:
                raise ProxyFailed("no audio could be decoded")
