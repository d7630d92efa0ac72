"""generateContent: a deterministic, plainly labelled answer about the file."""

from __future__ import annotations

import hashlib
from typing import Any

from mediasync.media.formats import audio_tokens, image_tokens_for, video_tokens_for

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


def media_tokens(rec: FileRecord, family: str = "2.5", res: str | None = None
                 ) -> tuple[str, int]:
    """(modality, prompt tokens) by the contract's token rules for a model of ``family``
    at media resolution ``res`` (None: its default)."""
    kind = media_kind(rec.mime)
    p = rec.probe
    if kind == "image":
        return "IMAGE", image_tokens_for(family, res, p.width or 1, p.height or 1)
    # Unknown durations are guessed from the size (≈128 kbit/s audio, ≈1 MB/s video).
    if kind == "audio":
        secs = p.duration if p.duration is not None else rec.size / 16_000
        return "AUDIO", audio_tokens(secs)
    secs = p.duration if p.duration is not None else rec.size / 1_000_000
    return "VIDEO", video_tokens_for(family, res, secs)


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


def prompt_tokens(records: list[FileRecord], prompt: str, family: str = "2.5",
                  resolutions: list[str | None] | None = None) -> dict[str, int]:
    """A request's input tokens by modality: what the answer itemises and the
    token quota counts. ``resolutions``: each record's media resolution."""
    text_tokens = max(1, len(prompt) // 4) if prompt else 0
    by_modality: dict[str, int] = {}
    if text_tokens:
        by_modality["TEXT"] = text_tokens
    for i, rec in enumerate(records):
        modality, n = media_tokens(rec, family, resolutions[i] if resolutions else None)
        by_modality[modality] = by_modality.get(modality, 0) + n
    return by_modality


def answer(
    spec: ModelSpec,
    records: list[FileRecord],
    prompt: str,
    by_modality: dict[str, int],
    block: tuple[str, str] | None = None,
    config: dict[str, Any] | None = None,
    tier: str | None = None,
) -> dict[str, Any]:
    """The response body; ``by_modality`` from :func:`prompt_tokens`, ``block`` =
    (stage, reason) of an injected block; ``tier``: the service tier that served it
    (reported in usageMetadata.serviceTier)."""
    model = spec.id  # modelVersion names the model that served, after any re-route
    prompt_tokens = sum(by_modality.values())
    details = [{"modality": m, "tokenCount": n} for m, n in by_modality.items()]
    seed = "|".join([model, prompt, *(r.sha256.hex() for r in records)])
    response_id = hashlib.sha256(seed.encode()).hexdigest()[:22]
    if block is not None:
        blocked = _blocked(*block, model, prompt_tokens, details)
        if tier:
            blocked["usageMetadata"]["serviceTier"] = tier
        return {**blocked, "responseId": response_id}
    described = "; ".join(_describe(r) for r in records) or "no file"
    text = f"{LABEL} {described} — prompt: “{prompt}”"
    wanted = schema.requested(config)
    if wanted is not None:  # JSON mode: an instance of the schema, as text
        first = records[0] if records else None
        text = schema.answer_text(
            wanted, label=text,
            kind=media_kind(first.mime) or "file" if first else "file",
            duration=first.probe.duration if first else None)
    out_tokens = max(1, len(text) // 4)
    thoughts = thinking.thought_tokens(spec, config, seed)
    finish = "STOP"
    limit = thinking.max_output_tokens(config)
    if limit is not None and (thoughts or 0) + out_tokens > limit:
        # Thoughts count against maxOutputTokens first (wire/21).
        finish = "MAX_TOKENS"
        thoughts = min(thoughts, limit) if thoughts is not None else None
        out_tokens = max(0, limit - (thoughts or 0))
        text = text[: out_tokens * 4]
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
