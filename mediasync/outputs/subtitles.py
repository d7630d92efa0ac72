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

MIN_CUE = 0.2  # seconds: a shorter cue cannot be read; it is lengthened or joins the one before
# Beyond this a time is no time (a model's 1e20, or milliseconds of a week): the cue is
# dropped and counted, never handed to timedelta (which overflows).
ABSURD_SECONDS = 7 * 86400.0
# Milliseconds where seconds were asked: a time this far past the end of the media that,
# read as milliseconds, falls inside it.
_MS_BEYOND = 1.5


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str
    speaker: str | None = None


@dataclass(frozen=True)
class Cues:
    """The cues, and what was done to the segments to get them: ``clamped`` ran past the
    end of the media and were cut there; ``dropped`` held text but no usable time (none,
    absurd, after the end) and are lost; ``repaired`` counts by what was mended without
    losing anything (start after end, milliseconds, joined to the cue before)."""

    cues: tuple[Cue, ...]
    clamped: int = 0
    dropped: int = 0
    segments: int = 0  # segments with text: what clamped and dropped are a share of
    repaired: tuple[tuple[str, int], ...] = ()


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def cues_from(
    segments: Iterable[Mapping[str, Any]], *, duration: float | None, max_cue: float
) -> Cues:
    """Ordered, non-overlapping cues within ``[0, duration]``, none longer than ``max_cue``.

    Every plausible reading is taken before a segment is given up: a start after its
    end is swapped, times in milliseconds are read as such, a cue too short or too
    close to the one before joins it. What is lost or cut is counted (issue 18, item 6).
    """
    raw: list[Cue] = []
    clamped = dropped = total = 0
    mended: dict[str, int] = {}

    def mend(why: str) -> None:
        mended[why] = mended.get(why, 0) + 1

    for seg in segments:
        if not isinstance(seg, Mapping):
            continue
        text = " ".join(str(seg.get("text") or "").split())
        if not text:
            continue
        total += 1
        start, end = _seconds(seg.get("start")), _seconds(seg.get("end"))
        if start is None or end is None:
            dropped += 1
            continue
        start, end = max(0.0, start), max(0.0, end)
        if start > end:
            start, end = end, start
            mend("start after end")
        if (duration is not None and end > duration * _MS_BEYOND + 1 and end / 1000 <= duration
                and end - start >= 1000 * MIN_CUE / 2):  # as ms, still a cue one can read
            start, end = start / 1000, end / 1000
            mend("milliseconds")
        if end > ABSURD_SECONDS or (duration is not None and start >= duration):
            dropped += 1  # no time in the media: nothing to show it at
            continue
        if duration is not None and end > duration:
            clamped += 1
            end = duration
        if end - start < MIN_CUE:
            end = start + MIN_CUE
            if duration is not None and end > duration:
                start, end = max(0.0, duration - MIN_CUE), duration
            mend("too short, lengthened")
        speaker = " ".join(str(seg.get("speaker") or "").split()) or None
        raw.append(Cue(start, end, text, speaker))
    raw.sort(key=lambda c: (c.start, c.end))
    ordered: list[Cue] = []
    for cue in raw:
        if ordered and cue.start < ordered[-1].end:
            prev = ordered[-1]
            # Overlap: the earlier cue ends where this one starts (speech rarely overlaps
            # in a way a reader can follow on one line); one starting too soon after it
            # to be read apart joins its text instead.
            if cue.start - prev.start >= MIN_CUE:
                ordered[-1] = Cue(prev.start, cue.start, prev.text, prev.speaker)
            else:
                ordered[-1] = _join(prev, cue)
                mend("joined to the cue before")
                continue
        ordered.append(cue)
    out: list[Cue] = []
    for cue in ordered:
        out.extend(_split(cue, max_cue))
    return Cues(tuple(out), clamped, dropped, total, tuple(sorted(mended.items())))


def _join(prev: Cue, cue: Cue) -> Cue:
    text = cue.text if cue.speaker == prev.speaker or not cue.speaker else (
        f"{cue.speaker}: {cue.text}")
    return Cue(prev.start, max(prev.end, cue.end), f"{prev.text} {text}", prev.speaker)


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
