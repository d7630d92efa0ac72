"""generateContent: a deterministic, plainly labelled answer about the file."""

from __future__ import annotations

import hashlib
from typing import Any

from mediasync.media import audio_tokens, image_tokens, kind_of_mime, video_tokens

from . import schema
from .errors import ApiError
from .store import FileRecord

LABEL = "[mediasync emulator]"


def file_parts(body: dict[str, Any]) -> tuple[list[tuple[str, str | None]], str]:
    """(file uri, mime) pairs and the joined prompt text of a request body."""
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    if not isinstance(contents, list):
        raise ApiError(400, "* GenerateContentRequest.contents: contents is not specified")
    files: list[tuple[str, str | None]] = []
    texts: list[str] = []
    for content in contents:
        for part in (content or {}).get("parts") or []:
            fd = part.get("file_data") or part.get("fileData")
            if fd:
                uri = fd.get("file_uri") or fd.get("fileUri")
                if not uri:
                    raise ApiError(400, "* GenerateContentRequest.contents: file_uri is empty")
                files.append((uri, fd.get("mime_type") or fd.get("mimeType")))
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


def media_tokens(rec: FileRecord) -> tuple[str, int]:
    """(modality, prompt tokens) by the contract's token rules."""
    kind = kind_of_mime(rec.mime)
    p = rec.probe
    if kind == "image":
        return "IMAGE", image_tokens(p.width, p.height) if p.width and p.height else 258
    # Unknown durations are guessed from the size (≈128 kbit/s audio, ≈1 MB/s video).
    if kind == "audio":
        secs = p.duration if p.duration is not None else rec.size / 16_000
        return "AUDIO", audio_tokens(secs)
    secs = p.duration if p.duration is not None else rec.size / 1_000_000
    return "VIDEO", video_tokens(secs)


def answer(model: str, records: list[FileRecord], prompt: str, blocked: bool,
           config: Any = None) -> dict[str, Any]:
    text_tokens = max(1, len(prompt) // 4) if prompt else 0
    by_modality: dict[str, int] = {}
    if text_tokens:
        by_modality["TEXT"] = text_tokens
    for rec in records:
        modality, n = media_tokens(rec)
        by_modality[modality] = by_modality.get(modality, 0) + n
    prompt_tokens = sum(by_modality.values())
    details = [{"modality": m, "tokenCount": n} for m, n in by_modality.items()]
    seed = "|".join([model, prompt, *(r.sha256.hex() for r in records)])
    response_id = hashlib.sha256(seed.encode()).hexdigest()[:22]
    if blocked:
        return {
            "promptFeedback": {
                "blockReason": "SAFETY",
                "safetyRatings": [
                    {
                        "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                        "probability": "HIGH",
                        "blocked": True,
                    }
                ],
            },
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "totalTokenCount": prompt_tokens,
                "promptTokensDetails": details,
            },
            "modelVersion": model,
            "responseId": response_id,
        }
    described = "; ".join(_describe(r) for r in records) or "no file"
    text = f"{LABEL} {described} — prompt: “{prompt}”"
    wanted = schema.requested(config)
    if wanted is not None:  # JSON mode: an instance of the schema, as text
        first = records[0] if records else None
        text = schema.answer_text(
            wanted, label=text,
            kind=kind_of_mime(first.mime) or "file" if first else "file",
            duration=first.probe.duration if first else None)
    out_tokens = max(1, len(text) // 4)
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": out_tokens,
            "totalTokenCount": prompt_tokens + out_tokens,
            "promptTokensDetails": details,
        },
        "modelVersion": model,
        "responseId": response_id,
    }
