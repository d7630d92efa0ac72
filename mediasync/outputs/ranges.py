"""Long audio and video asked for in time ranges, the answers joined in order.

A transcript or subtitles grow with the media; one answer is cut at the model's
output limit (finishReason MAX_TOKENS) and a 3-hour podcast gets an hour of
transcript. So a prompt with ``ranges`` asks for the media in parts: a video part
is a clip (``videoMetadata`` start and end offsets on the file part, so only the
clip is billed), an audio part is named in words ("from 20:00 to 40:00"; the
whole audio is billed each time, so audio parts are made as long as fit). The
parts' answers are joined: texts one after the other, subtitle segments with
continuous times (a model may count a clip's times from the clip's start or from
the media's: both readings are taken).

``ranges = "auto"`` asks for the whole first; an answer cut at the limit is asked
for again in parts sized from what the cut answer held. A duration asks in parts
that long from the start. A part cut again is split again, down to MIN_PART and at
most MAX_CALLS calls; past that, the output is incomplete (recorded, not retried).
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any

from mediasync.gemini import Usage
from mediasync.gemini.models import Generation
from mediasync.outputs.structured import Answer
from mediasync.rules import completeness

MIN_PART = 60.0  # seconds: a part is never shorter
MAX_CALLS = 64  # calls for one output, parts split again included
# Output tokens per second of dense speech (180 words a minute), generous so a part
# sized from them fits: a transcript's text, and subtitles' JSON around it.
TOKENS_PER_SECOND = {"text": 4.0, "subtitles": 8.0}
SAFETY = 0.8  # of what a cut answer showed fits, use this much


@dataclass(frozen=True)
class Span:
    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


def parts(span: Span, length: float) -> list[Span]:
    """``span`` in about equal parts of at most ``length`` seconds, meeting on whole
    seconds (a prompt names them to the second)."""
    n = max(1, math.ceil(span.length / length - 1e-9))
    step = span.length / n
    cuts = [span.start] + [float(round(span.start + i * step)) for i in range(1, n)] + [span.end]
    return [Span(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def clock(seconds: float) -> str:
    """mm:ss, or h:mm:ss from an hour on: how the range is said in a prompt."""
    s = int(round(seconds))
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def part_prompt(prompt: str, span: Span, index: int, count: int, fmt: str) -> str:
    text = (f"{prompt}\n\nThis is part {index} of {count} of a longer answer: answer only "
            f"for the media from {clock(span.start)} to {clock(span.end)}, continuing where "
            "the part before ends, with no preamble and no closing summary.")
    if fmt == "subtitles":
        text += " Give times in seconds from the start of the whole media."
    return text


def _visible(gen: Generation) -> int:
    return max(gen.usage.candidates_tokens, len(gen.text or "") // 4)


def splittable(gen: Generation, span: Span) -> bool:
    """The answer was cut because it was long (at least a quarter of the budget went
    to the answer, not all to thinking), and the span can be halved: smaller parts
    will fit."""
    visible = _visible(gen)
    return (completeness.cut_reason(gen.finish_reason, gen.text) == "MAX_TOKENS"
            and visible > 0 and 4 * visible >= visible + gen.usage.thoughts_tokens
            and span.length >= 2 * MIN_PART)


def smaller(gen: Generation, span: Span, fmt: str) -> list[Span]:
    """Parts of ``span`` each answer of which should fit, from what the cut one held."""
    fits = SAFETY * _visible(gen) / TOKENS_PER_SECOND.get(fmt, TOKENS_PER_SECOND["text"])
    return parts(span, max(MIN_PART, min(span.length / 2, fits)))


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def absolute(segments: list[Any], span: Span) -> list[Any]:
    """A part's segments with times from the start of the whole media. Times counted
    from the part's start are moved; segments past the part's end (the next part
    has them) are left out."""
    if span.start <= 0:
        return segments
    tol = max(1.0, 0.02 * span.length)
    starts = [s for s in (_number(g.get("start")) for g in segments if isinstance(g, dict))
              if s is not None]
    relative = bool(starts) and 2 * sum(1 for s in starts if s < span.start - tol) > len(starts)
    shift = span.start if relative else 0.0
    out = []
    for seg in segments:
        if not isinstance(seg, dict):
            continue
        start, end = _number(seg.get("start")), _number(seg.get("end"))
        if start is not None and end is not None:
            seg = {**seg, "start": start + shift, "end": end + shift}
            if seg["start"] >= span.end + tol:
                continue
        out.append(seg)
    return out


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(**{f.name: getattr(a, f.name) + getattr(b, f.name) for f in fields(Usage)})


def stitch(done: list[tuple[Span, Answer]], fmt: str, usage: Usage) -> Answer:
    """One answer from the parts' answers, in order."""
    done = sorted(done, key=lambda d: d[0].start)
    last = done[-1][1].generation
    if fmt == "subtitles":
        segments: list[Any] = []
        for span, answer in done:
            segments += absolute(list((answer.value or {}).get("segments") or []), span)
        value: Any = {"segments": segments}
        text = json.dumps(value, ensure_ascii=False)
    else:
        value = None
        text = "\n\n".join((a.generation.text or "").strip() for _, a in done) + "\n"
    gen = Generation(text, "STOP", None, usage, last.model_version)
    return Answer(gen, value, usage)


Ask = Callable[[str, tuple[float, float] | None], Awaitable[Answer]]


async def ask(ask_one: Ask, *, prompt: str, fmt: str, kind: str, duration: float,
              length: float | None, most: float | None = None) -> Answer:
    """The answer for the whole media, asked in parts where it does not fit in one.

    ``ask_one(prompt, clip)`` asks once (``clip``: a video's (start, end) seconds);
    ``length``: the part length to start with (None: the whole first); ``most``: the
    longest part one request takes (a video longer than that starts in parts).
    Returns the joined answer, or the first part's answer that is not whole (blocked,
    cut and not splittable, out of calls), with every call's usage.
    """
    whole = Span(0.0, duration)
    if most is not None and duration > most:
        length = min(length or most, most)
    pending: list[Span | None] = (list(parts(whole, length)) if length and duration > length
                                  else [None])
    done: list[tuple[Span, Answer]] = []
    usage, calls = Usage(), 0
    while pending:
        span = pending.pop(0)
        count = len(done) + len(pending) + 1
        index = len(done) + 1
        if span is None:
            answer = await ask_one(prompt, None)
        else:
            clip = (span.start, span.end) if kind == "video" else None
            answer = await ask_one(part_prompt(prompt, span, index, count, fmt), clip)
        calls += 1
        usage = _add(usage, answer.usage)
        gen = answer.generation
        whole_answer = (not gen.blocked and gen.text is not None
                        and completeness.cut_reason(gen.finish_reason, gen.text) is None
                        and (fmt != "subtitles" or answer.value is not None))
        if whole_answer:
            done.append((span or whole, answer))
            continue
        at = span or whole
        if splittable(gen, at) and calls + len(pending) < MAX_CALLS:
            pending[0:0] = smaller(gen, at, fmt)
            continue
        where = f"part {clock(at.start)}–{clock(at.end)}: " if span is not None else ""
        return Answer(gen, answer.value, usage, where or None)
    if len(done) == 1 and done[0][0] == whole and calls == 1:
        return done[0][1]
    return stitch(done, fmt, usage)
