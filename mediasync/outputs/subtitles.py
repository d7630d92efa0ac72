"""Subtitles from timed segments: cues put in order, kept apart, clamped to the
media's length and split when too long; rendered as SRT (``srt``) or WebVTT
(``webvtt-py``). Pure apart from the libraries.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

MIN_CUE = 0.2  # seconds: a shorter cue cannot be read; it joins no one and is dropped


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str
    speaker: str | None = None


@dataclass(frozen=True)
class Cues:
    cues: tuple[Cue, ...]
    clamped: int  # cues whose times ran past the end of the media


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def cues_from(
    segments: Iterable[Mapping[str, Any]], *, duration: float | None, max_cue: float
) -> Cues:
    """Ordered, non-overlapping cues within ``[0, duration]``, none longer than ``max_cue``."""
    raw: list[Cue] = []
    clamped = 0
    for seg in segments:
        start, end = _seconds(seg.get("start")), _seconds(seg.get("end"))
        text = " ".join(str(seg.get("text") or "").split())
        if start is None or end is None or not text:
            continue
        start, end = max(0.0, start), max(0.0, end)
        if duration is not None and end > duration:
            clamped += 1
            end = duration
            start = min(start, duration)
        if end - start < MIN_CUE:
            continue
        speaker = " ".join(str(seg.get("speaker") or "").split()) or None
        raw.append(Cue(start, end, text, speaker))
    raw.sort(key=lambda c: (c.start, c.end))
    ordered: list[Cue] = []
    for cue in raw:
        if ordered and cue.start < ordered[-1].end:
            prev = ordered[-1]
            # Overlap: the earlier cue ends where this one starts (speech rarely overlaps
            # in a way a reader can follow on one line).
            if cue.start - prev.start >= MIN_CUE:
                ordered[-1] = Cue(prev.start, cue.start, prev.text, prev.speaker)
            else:
                cue = Cue(prev.end, cue.end, cue.text, cue.speaker)
                if cue.end - cue.start < MIN_CUE:
                    continue
        ordered.extend(_split(cue, max_cue))
    return Cues(tuple(ordered), clamped)


def _split(cue: Cue, max_cue: float) -> list[Cue]:
    """A cue longer than ``max_cue`` becomes several, its words shared out by length."""
    length = cue.end - cue.start
    n = math.ceil(length / max_cue - 1e-9) if max_cue > 0 else 1
    words = cue.text.split()
    n = max(1, min(n, len(words)))
    if n == 1:
        if length <= max_cue:
            return [cue]
        return [Cue(cue.start, cue.start + max_cue, cue.text, cue.speaker)]
    step = length / n
    out = []
    for i in range(n):
        chunk = words[round(i * len(words) / n): round((i + 1) * len(words) / n)]
        out.append(Cue(cue.start + i * step, cue.start + (i + 1) * step, " ".join(chunk),
                       cue.speaker))
    return out


def render_srt(cues: Iterable[Cue]) -> str:
    import srt

    subs = [
        srt.Subtitle(index=i, start=timedelta(seconds=c.start), end=timedelta(seconds=c.end),
                     content=f"{c.speaker}: {c.text}" if c.speaker else c.text)
        for i, c in enumerate(cues, 1)
    ]
    return srt.compose(subs, reindex=False)


def render_vtt(cues: Iterable[Cue]) -> str:
    from webvtt import Caption, WebVTT

    vtt = WebVTT()
    for c in cues:
        # <v Name> is WebVTT's voice tag: players show or style the speaker.
        text = f"<v {_vtt_safe(c.speaker)}>{_vtt_safe(c.text)}" if c.speaker else _vtt_safe(c.text)
        vtt.captions.append(Caption(_vtt_time(c.start), _vtt_time(c.end), text))
    return vtt.content


def _vtt_safe(text: str) -> str:
    # "-->" would end the cue text early; <, > and & are markup in WebVTT.
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("-->", "→"))


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def render(fmt: str, cues: Iterable[Cue]) -> str:
    if fmt == "srt":
        return render_srt(cues)
    if fmt == "vtt":
        return render_vtt(cues)
    raise ValueError(f"unknown subtitle format {fmt!r}")
