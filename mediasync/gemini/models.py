"""Plain frozen values parsed from the service's camelCase JSON."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .errors import ProtocolError, parse_duration

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 with up to 9 fractional digits (Python keeps 6) → aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    # The service's own form (UTC, "Z", a fraction: wire/01, 11, 13), three times per
    # listed file: cut to microseconds by slicing, without the general reading's rewrites.
    if (len(value) > 21 and value[-1] == "Z" and value[19] == "." and value[10] == "T"
            and value[0].isdigit()):
        fraction = value[20:-1]
        if fraction.isascii() and fraction.isdigit():
            try:
                return datetime.fromisoformat(f"{value[:20]}{fraction[:6]:0<6}+00:00")
            except ValueError:
                return None
    return parse_time_general(value)


def parse_time_general(value: str) -> datetime | None:
    """Every RFC 3339 form parse_time accepts, without its fast path."""
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # fromisoformat rejects more than 6 fractional digits: truncate nanoseconds.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


HashForm = Literal["hex", "raw", "plain", "absent", "unreadable"]


def parse_sha256(value: Any) -> tuple[str | None, HashForm]:
    """The lowercase hex SHA-256 in a ``sha256Hash`` and the form it came in.

    The live service writes base64 of the hex digest *string* (88 characters,
    wire/11): form "hex". Base64 of the raw 32 bytes ("raw") and plain hex
    ("plain") are read too, since a change of form must not make every upload
    look corrupt. No digest for "absent" and "unreadable": callers treat that as
    "cannot check", never as a mismatch.
    """
    if not isinstance(value, str) or not value.strip():
        return None, "absent"
    text = value.strip()
    if _HEX64.fullmatch(text):
        return text.lower(), "plain"
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.urlsafe_b64decode(padded)
        except (binascii.Error, ValueError):
            return None, "unreadable"
    if len(raw) == 32:
        return raw.hex(), "raw"
    decoded = raw.decode("ascii", "replace")
    return (decoded.lower(), "hex") if _HEX64.fullmatch(decoded) else (None, "unreadable")


def sha256_hex(value: Any) -> str | None:
    """The hex digest in a ``sha256Hash`` of any plausible form (see parse_sha256)."""
    return parse_sha256(value)[0]


def epoch(value: datetime | None) -> float | None:
    """Seconds since the epoch of a parsed time, or None."""
    return value.timestamp() if value else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class File:
    name: str
    display_name: str | None = None
    mime_type: str | None = None
    size_bytes: int | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None
    expiration_time: datetime | None = None
    sha256_hash: str | None = None
    uri: str | None = None
    state: str = "STATE_UNSPECIFIED"
    error_message: str | None = None
    video_duration: float | None = None

    @property
    def sha256_hex(self) -> str | None:
        """The digest the service reports, in hex; None when absent or unreadable."""
        return sha256_hex(self.sha256_hash)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> File:
        """A bare File (files.get, list items) or finalize's ``{"file": {…}}`` (wire/11)."""
        if "name" not in data and isinstance(data.get("file"), dict):
            data = data["file"]
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        video = data.get("videoMetadata") if isinstance(data.get("videoMetadata"), dict) else {}
        return cls(
            name=str(data.get("name") or ""),
            display_name=data.get("displayName"),
            mime_type=data.get("mimeType"),
            size_bytes=_int(data.get("sizeBytes")),
            create_time=parse_time(data.get("createTime")),
            update_time=parse_time(data.get("updateTime")),
            expiration_time=parse_time(data.get("expirationTime")),
            sha256_hash=data.get("sha256Hash"),
            uri=data.get("uri"),
            state=str(data.get("state") or "STATE_UNSPECIFIED"),
            error_message=(error or {}).get("message"),
            video_duration=parse_duration((video or {}).get("videoDuration")),
        )


@dataclass(frozen=True)
class UploadSession:
    """A resumable upload: plain values the caller may persist and hand back."""

    url: str
    size: int
    granularity: int = 8 * 1024 * 1024


@dataclass(frozen=True)
class UploadStatus:
    state: Literal["active", "final"]
    received: int
    file: File | None = None


@dataclass(frozen=True)
class Usage:
    """Token counts; thoughts are billed as output but not in ``candidates_tokens``
    (total = prompt + candidates + thoughts, wire/19); absent counts are 0."""

    prompt_tokens: int = 0
    candidates_tokens: int = 0
    total_tokens: int = 0
    thoughts_tokens: int = 0  # absent (0) without thinking; billed as output


def tier_name(value: Any) -> str | None:
    """A service tier as the answer names it ("flex", "FLEX", "SERVICE_TIER_FLEX"), in
    the config's words ("flex", "standard", "priority"); None when absent or unknown."""
    if not isinstance(value, str) or not value.strip():
        return None
    name = value.strip().lower().removeprefix("service_tier_")
    return name if name in ("flex", "standard", "priority") else None


@dataclass(frozen=True)
class Generation:
    """One generateContent answer; a blocked answer is a result with no text.

    ``model_version``: the model that served it (after a silent re-route, not the one
    asked for); ``service_tier``: the tier that served it (usageMetadata.serviceTier,
    else the x-gemini-service-tier header), None when the answer did not say."""

    text: str | None
    finish_reason: str | None
    block_reason: str | None
    usage: Usage
    model_version: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    service_tier: str | None = None

    @property
    def blocked(self) -> bool:
        return self.block_reason is not None or (
            self.text is None and self.finish_reason not in (None, "STOP", "MAX_TOKENS")
        )

    @classmethod
    def from_json(cls, data: dict[str, Any], *, tier_header: str | None = None) -> Generation:
        # Every level may be missing: no candidates (blocked prompt, wire/22), no
        # content (blocked candidate, 24), content without parts (MAX_TOKENS, 21).
        candidates = _list(data.get("candidates"))
        first = _dict(candidates[0]) if candidates else {}
        parts = _list(_dict(first.get("content")).get("parts"))
        # Thought summaries are not the answer; join the plain text parts only.
        texts = [
            p["text"]
            for p in parts
            if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
        ]
        meta = _dict(data.get("usageMetadata"))
        feedback = _dict(data.get("promptFeedback"))
        return cls(
            text="".join(texts) if texts else None,
            finish_reason=first.get("finishReason"),
            block_reason=feedback.get("blockReason"),
            usage=Usage(
                prompt_tokens=_int(meta.get("promptTokenCount")) or 0,
                candidates_tokens=_int(meta.get("candidatesTokenCount")) or 0,
                total_tokens=_int(meta.get("totalTokenCount")) or 0,
                thoughts_tokens=_int(meta.get("thoughtsTokenCount")) or 0,
            ),
            model_version=_model_id(data.get("modelVersion")),
            raw=data,
            service_tier=tier_name(meta.get("serviceTier")) or tier_name(tier_header),
        )


def _model_id(value: Any) -> str | None:
    return value.removeprefix("models/") if isinstance(value, str) and value else None


@dataclass(frozen=True)
class ModelInfo:
    """One model of models.list / models.get. The field set is not proven by a capture
    (files-api.md, "Models"): every field but the name may be missing."""

    name: str  # "models/<id>"
    display_name: str | None = None
    description: str | None = None
    version: str | None = None
    input_token_limit: int | None = None
    output_token_limit: int | None = None
    methods: tuple[str, ...] = ()  # supportedGenerationMethods
    thinking: bool | None = None

    @property
    def id(self) -> str:
        return self.name.removeprefix("models/")

    @property
    def generates(self) -> bool:
        """Whether it answers generateContent (an answer that lists no methods: assume so)."""
        return not self.methods or "generateContent" in self.methods

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelInfo:
        methods = data.get("supportedGenerationMethods", data.get("supported_generation_methods"))
        thinking = data.get("thinking")
        return cls(
            name=str(data.get("name") or ""),
            display_name=data.get("displayName") if isinstance(data.get("displayName"), str)
            else None,
            description=data.get("description") if isinstance(data.get("description"), str)
            else None,
            version=str(data["version"]) if data.get("version") is not None else None,
            input_token_limit=_int(data.get("inputTokenLimit")),
            output_token_limit=_int(data.get("outputTokenLimit")),
            methods=tuple(m for m in _list(methods) if isinstance(m, str)),
            thinking=thinking if isinstance(thinking, bool) else None,
        )


def model_name(model: str) -> str:
    """A model's resource name: ``models/`` added when the caller gave the bare id."""
    return model if model.startswith("models/") else f"models/{model}"


def json_object(content: bytes) -> dict[str, Any]:
    """An answer body as a JSON object; an empty body is ``{}`` (the service's "nothing")."""
    if not content:
        return {}
    try:
        data = json.loads(content)
    except ValueError:
        raise ProtocolError("answer is not JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("answer is not a JSON object")
    return data


def file_name(name: str) -> str:
    """A file's resource name: ``files/`` added when the caller gave the bare id."""
    return name if name.startswith("files/") else f"files/{name}"
