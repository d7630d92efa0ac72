"""generateContent: a deterministic, plainly labelled answer about the file."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from mediasync.media.formats import (
    MAX_AUDIO_SECONDS,
    MAX_VIDEO_SECONDS,
    audio_tokens,
    image_tokens_for,
    video_tokens_for,
)

from . import schema, thinking
from .errors import ApiError
from .models import ModelSpec
from .store import FileRecord, media_kind

LABEL = "[mediasync emulator]"


def resolution(value: Any) -> str | None:
    """"MEDIA_RESOLUTION_LOW" (or {"level": …}, a part's form) → "low"; None: unset."""
    if isinstance(value, dict):
        value = value.get("level")
    if not isinstance(value, str):
        return None
    word = value.upper().removeprefix("MEDIA_RESOLUTION_").lower()
    return word if word in ("low", "medium", "high") else None


def file_parts(body: dict[str, Any]) -> tuple[list[tuple[str, str | None, str | None]], str]:
    """(file uri, mime, the part's own media resolution) and the joined prompt text of a
    request body."""
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    if not isinstance(contents, list):
        raise ApiError(400, "* GenerateContentRequest.contents: contents is not specified")
    files: list[tuple[str, str | None, str | None]] = []
    texts: list[str] = []
    for content in contents:
        for part in (content or {}).get("parts") or []:
            fd = part.get("file_data") or part.get("fileData")
            if fd:
                uri = fd.get("file_uri") or fd.get("fileUri")
                if not uri:
                    raise ApiError(400, "* GenerateContentRequest.contents: file_uri is empty")
                own = resolution(part.get("mediaResolution", part.get("media_resolution")))
                files.append((uri, fd.get("mime_type") or fd.get("mimeType"), own))
            elif isinstance(part.get("text"), str):
                texts.append(part["text"])
    return files, "\n".join(texts)


Clip = tuple[float, float | None]  # seconds of the media a request covers: start, end


def _offset(value: Any) -> float | None:
    """A protobuf Duration as JSON: "600s", "1.5s" (or a bare number, leniently)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)s?\s*", value)
        if m:
            return float(m.group(1))
    return None


def clip_of(body: dict[str, Any]) -> Clip | None:
    """The first file part's ``videoMetadata`` clip (startOffset/endOffset), if any."""
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    for content in contents if isinstance(contents, list) else []:
        for part in (content or {}).get("parts") or []:
            meta = part.get("videoMetadata") or part.get("video_metadata")
            if isinstance(meta, dict) and (part.get("file_data") or part.get("fileData")):
                start = _offset(meta.get("startOffset", meta.get("start_offset"))) or 0.0
                return start, _offset(meta.get("endOffset", meta.get("end_offset")))
    return None


_CLOCK = r"(\d{1,2}(?::\d{2}){1,2})"
_SPOKEN_RANGE = re.compile(rf"from {_CLOCK} to {_CLOCK}", re.IGNORECASE)


def _clock_seconds(text: str) -> float:
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def spoken_range(prompt: str) -> Clip | None:
    """A range asked for in words ("from 20:00 to 40:00"), as for audio."""
    m = _SPOKEN_RANGE.search(prompt)
    return (_clock_seconds(m.group(1)), _clock_seconds(m.group(2))) if m else None


def file_id_of(uri: str) -> str:
    # ".../v1beta/files/abc" or "files/abc" both name file "abc".
    return uri.rstrip("/").rsplit("/files/", 1)[-1].removeprefix("files/")


def _describe(rec: FileRecord) -> str:
    bits = [rec.mime]
    p = rec.probe
    if p.width and p.height:
        bits.append(f"{p.width}×{p.height} px")
    if p.duration is not None:
        bits.append(f"{p.duration:.1f} s")
    bits.append(_size(rec.size))
    bits.append(f"sha256 {rec.sha256.hex()[:8]}…")
    return ", ".join(bits)


def _size(n: int) -> str:
    for unit, div in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def _seconds(rec: FileRecord) -> float:
    # Unknown durations are guessed from the size (≈128 kbit/s audio, ≈1 MB/s video).
    if rec.probe.duration is not None:
        return rec.probe.duration
    return rec.size / (16_000 if media_kind(rec.mime) == "audio" else 1_000_000)


def _span(rec: FileRecord, clip: Clip | None) -> tuple[float, float]:
    """The seconds of the media a request covers, within the media."""
    length = _seconds(rec)
    start, end = clip if clip is not None else (0.0, None)
    start = min(max(0.0, start), length)
    end = length if end is None else min(max(start, end), length)
    return start, end


def media_tokens(rec: FileRecord, family: str = "2.5", res: str | None = None,
                 clip: Clip | None = None) -> tuple[str, int]:
    """(modality, prompt tokens) by the contract's token rules for a model of ``family``
    at media resolution ``res`` (None: its default); a video clip (videoMetadata)
    counts only its own seconds."""
    kind = media_kind(rec.mime)
    p = rec.probe
    if kind == "image":
        return "IMAGE", image_tokens_for(family, res, p.width or 1, p.height or 1)
    if kind == "audio":
        return "AUDIO", audio_tokens(_seconds(rec))
    start, end = _span(rec, clip)
    return "VIDEO", video_tokens_for(family, res, end - start)


_CATEGORIES = (
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
)


def _ratings(flag_blocked: bool) -> list[dict[str, Any]]:
    # The last category is the offending one; only a candidate block flags it (wire/23, 24).
    out: list[dict[str, Any]] = [{"category": c, "probability": "NEGLIGIBLE"} for c in _CATEGORIES]
    out[-1]["probability"] = "HIGH"
    if flag_blocked:
        out[-1]["blocked"] = True
    return out


def _blocked(
    stage: str, reason: str, model: str, prompt_tokens: int, details: list[dict[str, Any]]
) -> dict[str, Any]:
    if stage == "candidate":  # no content, a token or so produced before the block (24)
        return {
            "candidates": [{"finishReason": reason, "safetyRatings": _ratings(True)}],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": 1,
                "totalTokenCount": prompt_tokens + 1,
                "promptTokensDetails": details,
            },
            "modelVersion": model,
        }
    feedback: dict[str, Any] = {"blockReason": reason}
    if reason == "SAFETY":  # PROHIBITED_CONTENT comes without ratings (22)
        feedback["safetyRatings"] = _ratings(False)
    return {
        "promptFeedback": feedback,
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "totalTokenCount": prompt_tokens,
            "promptTokensDetails": details,
        },
        "modelVersion": model,
    }


INPUT_TOKEN_LIMIT = 1_048_576  # gemini-2.5-flash's context window


def check_length(records: list[FileRecord], clip: Clip | None, tokens: int) -> None:
    """Refuse media longer than one request takes, as the service does (400): video past
    MAX_VIDEO_SECONDS (a clip counts alone), audio past MAX_AUDIO_SECONDS."""
    for i, rec in enumerate(records):
        kind = media_kind(rec.mime)
        limit = {"video": MAX_VIDEO_SECONDS, "audio": MAX_AUDIO_SECONDS}.get(kind or "")
        if limit is None:
            continue
        start, end = _span(rec, clip if i == 0 and kind == "video" else None)
        if end - start > limit:
            raise ApiError(400, f"The input token count ({max(tokens, INPUT_TOKEN_LIMIT + 1)}) "
                                f"exceeds the maximum number of tokens allowed "
                                f"({INPUT_TOKEN_LIMIT}).")


def prompt_tokens(records: list[FileRecord], prompt: str, family: str = "2.5",
                  resolutions: list[str | None] | None = None,
                  clip: Clip | None = None) -> dict[str, int]:
    """A request's input tokens by modality: what the answer itemises and the
    token quota counts. ``resolutions``: each record's media resolution."""
    text_tokens = max(1, len(prompt) // 4) if prompt else 0
    by_modality: dict[str, int] = {}
    if text_tokens:
        by_modality["TEXT"] = text_tokens
    for i, rec in enumerate(records):
        modality, n = media_tokens(rec, family, resolutions[i] if resolutions else None,
                                   clip if i == 0 else None)
        by_modality[modality] = by_modality.get(modality, 0) + n
    return by_modality


# A transcript or subtitles grow with the media: speech at about 2.5 tokens a second,
# written as one line (or one segment) per SPEECH_STEP seconds of the covered range.
SPEECH_STEP = 10.0
_LONG_FORM = re.compile(r"transcri|subtitle|speech", re.IGNORECASE)


def _long_form(prompt: str, wanted: dict[str, Any] | None) -> bool:
    if wanted is not None:
        props = wanted.get("properties") if isinstance(wanted, dict) else None
        return isinstance(props, dict) and "segments" in props
    return bool(_LONG_FORM.search(prompt))


def _words(n: int, seed: str) -> str:
    syllables = ("la", "mo", "ri", "ta", "ve", "no", "su", "ke")
    h = int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16)
    return " ".join(syllables[(h >> i) % 8] + syllables[(h >> (i + 3)) % 8]
                    for i in range(n))


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _speech(rec: FileRecord, clip: Clip | None, shift: float, label: str,
            wanted: dict[str, Any] | None) -> str:
    """A transcript (text) or subtitle segments (JSON) of the covered range, times
    counted from ``shift`` (a clip's start: times relative to the clip, the reading
    hardest on a client that asked for absolute ones)."""
    # The media's speech sits at fixed times (a line every SPEECH_STEP seconds from its
    # start); a range holds the lines that begin inside it, so the answers of ranges
    # side by side hold each line once.
    start, end = _span(rec, clip)
    length = _seconds(rec)
    first = math.ceil(start / SPEECH_STEP - 1e-9)
    steps = []
    k = first
    while k * SPEECH_STEP < end or (k == first and start == end == 0):
        a = k * SPEECH_STEP
        steps.append((a, min(length, a + SPEECH_STEP)))
        k += 1
    if wanted is not None:
        segments = [{"start": round(a - shift, 3), "end": round(b - shift, 3),
                     "text": _words(6, f"{rec.sha256.hex()}{a}")} for a, b in steps]
        return json.dumps({"segments": segments}, ensure_ascii=False,
                          separators=(",", ":")) + " \n"
    lines = [label] + [f"[{_clock(a - shift)}] {_words(14, f'{rec.sha256.hex()}{a}')}"
                       for a, _ in steps]
    return "\n".join(lines)


def answer(
    spec: ModelSpec,
    records: list[FileRecord],
    prompt: str,
    by_modality: dict[str, int],
    block: tuple[str, str] | None = None,
    config: dict[str, Any] | None = None,
    tier: str | None = None,
    *,
    clip: Clip | None = None,
    output_limit: int | None = None,
    cut: tuple[str, float] | None = None,
) -> dict[str, Any]:
    """The response body; ``by_modality`` from :func:`prompt_tokens`, ``block`` =
    (stage, reason) of an injected block; ``tier``: the service tier that served it
    (reported in usageMetadata.serviceTier). ``clip``: the first file's videoMetadata
    range; ``output_limit``: the model's own output limit (maxOutputTokens may lower
    it); ``cut``: (finishReason, share of the text kept) of an injected early stop."""
    model = spec.id  # modelVersion names the model that served, after any re-route
    prompt_tokens = sum(by_modality.values())
    details = [{"modality": m, "tokenCount": n} for m, n in by_modality.items()]
    seed = "|".join([model, prompt, *(r.sha256.hex() for r in records)])
    if clip is not None:
        seed += f"|{clip}"
    response_id = hashlib.sha256(seed.encode()).hexdigest()[:22]
    if block is not None:
        blocked = _blocked(*block, model, prompt_tokens, details)
        if tier:
            blocked["usageMetadata"]["serviceTier"] = tier
        return {**blocked, "responseId": response_id}
    described = "; ".join(_describe(r) for r in records) or "no file"
    text = f"{LABEL} {described} — prompt: “{prompt}”"
    wanted = schema.requested(config)
    first = records[0] if records else None
    timed = first is not None and media_kind(first.mime) in ("audio", "video")
    if timed and first is not None and _long_form(prompt, wanted):
        # The range asked for: a clip of a video, or in words for audio.
        asked = clip if clip is not None and media_kind(first.mime) == "video" else (
            spoken_range(prompt))
        shift = asked[0] if clip is not None and asked is clip else 0.0
        text = _speech(first, asked, shift, text, wanted)
    elif wanted is not None:  # JSON mode: an instance of the schema, as text
        text = schema.answer_text(
            wanted, label=text,
            kind=media_kind(first.mime) or "file" if first else "file",
            duration=first.probe.duration if first else None)
    out_tokens = max(1, len(text) // 4)
    thoughts = thinking.thought_tokens(spec, config, seed)
    finish = "STOP"
    asked_limit = thinking.max_output_tokens(config)
    limit = min(x for x in (asked_limit, output_limit) if x is not None) if (
        asked_limit is not None or output_limit is not None) else None
    if limit is not None and (thoughts or 0) + out_tokens > limit:
        # Thoughts count against maxOutputTokens first (wire/21).
        finish = "MAX_TOKENS"
        thoughts = min(thoughts, limit) if thoughts is not None else None
        out_tokens = max(0, limit - (thoughts or 0))
        text = text[: out_tokens * 4]
    if cut is not None and out_tokens:
        # An injected early stop: the answer ends mid-way with this reason.
        finish = cut[0]
        text = text[: max(1, int(len(text) * cut[1]))]
        out_tokens = max(1, len(text) // 4)
    content: dict[str, Any] = {"role": "model"}
    if out_tokens:
        content = {"parts": [{"text": text}], "role": "model"}
    usage: dict[str, Any] = {"promptTokenCount": prompt_tokens}
    if out_tokens:  # absent when nothing visible came out (21)
        usage["candidatesTokenCount"] = out_tokens
    usage["totalTokenCount"] = prompt_tokens + out_tokens + (thoughts or 0)
    usage["promptTokensDetails"] = details
    if thoughts is not None:
        usage["thoughtsTokenCount"] = thoughts
    elif out_tokens:  # pre-2.5 answers itemise the output too (17, 18); 2.5 ones do not (19)
        usage["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": out_tokens}]
    if tier:
        usage["serviceTier"] = tier
    return {
        "candidates": [{"content": content, "finishReason": finish, "index": 0}],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": response_id,
    }


def scripted(answer: dict[str, Any], text: str, finish: str) -> dict[str, Any]:
    """``answer`` with its candidate's text replaced (an injected scripted answer)."""
    out_tokens = max(1, len(text) // 4)
    usage = dict(answer.get("usageMetadata") or {})
    thoughts = usage.get("thoughtsTokenCount") or 0
    usage["candidatesTokenCount"] = out_tokens
    usage["totalTokenCount"] = (usage.get("promptTokenCount") or 0) + out_tokens + thoughts
    return {**answer, "usageMetadata": usage,
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                            "finishReason": finish, "index": 0}]}
