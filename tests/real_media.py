"""Small real media files (frames and sound that decode), made with PyAV, for the
upload proxy tests. The big ones of benchmark 3 are made by bench/proxy.py."""

from __future__ import annotations

import math
import os
import struct
from fractions import Fraction
from pathlib import Path


def _tone(n: int, rate: int, freq: float, channels: int, start: int = 0) -> bytes:
    one = [int(0.3 * 32767 * math.sin(2 * math.pi * freq * (start + i) / rate)) for i in range(n)]
    return struct.pack(f"<{n * channels}h", *(s for s in one for _ in range(channels)))


def _audio_frames(av, stream, seconds: float, rate: int, freq: float):  # noqa: ANN001
    total, step = int(seconds * rate), 1024
    for start in range(0, total, step):
        n = min(step, total - start)
        f = av.AudioFrame(format="s16", layout="stereo", samples=n)
        f.planes[0].update(_tone(n, rate, freq, 2, start))
        f.sample_rate, f.pts = rate, start
        yield from stream.encode(f)
    yield from stream.encode(None)


def video(path: Path, seconds: float = 2.0, width: int = 320, height: int = 240,
          fps: int = 25, audio: bool = True, bitrate: int = 2_000_000,
          noise: bool = False) -> Path:
    """An H.264 + AAC MP4; ``noise``: frames of random grey, which no encoder shrinks."""
    import av

    with av.open(str(path), "w", format="mp4") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt, v.bit_rate = width, height, "yuv420p", bitrate
        a = out.add_stream("aac", rate=44100) if audio else None
        if a is not None:
            a.layout = "stereo"
        for i in range(int(seconds * fps)):
            f = av.VideoFrame(width, height, "gray")
            plane = f.planes[0]
            if noise:
                plane.update(os.urandom(plane.line_size * height))
            else:
                row = bytes((x + i * 4) % 256 for x in range(plane.line_size))
                plane.update(row * height)
            f = f.reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        if a is not None:
            for p in _audio_frames(av, a, seconds, 44100, 440.0):
                out.mux(p)
    return path


def audio(path: Path, seconds: float = 3.0, rate: int = 44100) -> Path:
    """A stereo WAV tone."""
    import av

    with av.open(str(path), "w", format="wav") as out:
        a = out.add_stream("pcm_s16le", rate=rate)
        a.layout = "stereo"
        for p in _audio_frames(av, a, seconds, rate, 330.0):
            out.mux(p)
    return path
