"""Supported media formats, service limits and token estimates.

An explicit table rather than :mod:`mimetypes`: the stdlib guesses wrongly for
several formats the service accepts (``audio/mpeg`` vs ``audio/mp3``, ``.mov``…).
Shared with the emulator, so it holds constants and pure functions only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

Kind = Literal["image", "audio", "video"]
KINDS: tuple[Kind, ...] = ("image", "audio", "video")

GB = 1000**3  # the service counts decimal gigabytes
MAX_FILE_BYTES = 2 * GB
# The project's store: 20 GiB, the quotaValue of the live storage-full answer
# ("21474836480", wire/02 and 03), though the docs call it "20 GB".
MAX_PROJECT_BYTES = 20 * 1024**3
FILE_TTL_SECONDS = 48 * 3600
MAX_VIDEO_SECONDS = 3600
MAX_AUDIO_SECONDS = int(9.5 * 3600)


@dataclass(frozen=True)
class MediaType:
    kind: Kind
    mime: str


_TABLE: dict[str, MediaType] = {
    # image
    ".png": MediaType("image", "image/png"),
    ".jpg": MediaType("image", "image/jpeg"),
    ".jpeg": MediaType("image", "image/jpeg"),
    ".webp": MediaType("image", "image/webp"),
    ".heic": MediaType("image", "image/heic"),
    ".heif": MediaType("image", "image/heif"),
    # audio
    ".wav": MediaType("audio", "audio/wav"),
    ".mp3": MediaType("audio", "audio/mp3"),
    ".aiff": MediaType("audio", "audio/aiff"),
    ".aif": MediaType("audio", "audio/aiff"),
    ".aac": MediaType("audio", "audio/aac"),
    ".ogg": MediaType("audio", "audio/ogg"),
    ".oga": MediaType("audio", "audio/ogg"),
    ".flac": MediaType("audio", "audio/flac"),
    # video
    ".mp4": MediaType("video", "video/mp4"),
    ".m4v": MediaType("video", "video/mp4"),
    ".mpeg": MediaType("video", "video/mpeg"),
    ".mpg": MediaType("video", "video/mpg"),
    ".mov": MediaType("video", "video/mov"),
    ".avi": MediaType("video", "video/avi"),
    ".flv": MediaType("video", "video/x-flv"),
    ".webm": MediaType("video", "video/webm"),
    ".wmv": MediaType("video", "video/wmv"),
    ".3gp": MediaType("video", "video/3gpp"),
    ".3gpp": MediaType("video", "video/3gpp"),
}

SUPPORTED_MIME_TYPES: frozenset[str] = frozenset(t.mime for t in _TABLE.values())


def media_type(path: str | PurePath) -> MediaType | None:
    """The media type of a file by its extension, or None when unsupported."""
    if isinstance(path, str) and "/" not in path:
        # A bare name, as a scan has it: PurePath.suffix's rule without parsing a
        # path (once per file of a walk of 100,000).
        i = path.rfind(".")
        return _TABLE.get(path[i:].lower()) if 0 < i < len(path) - 1 else None
    return _TABLE.get(PurePath(path).suffix.lower())


def kind_of_mime(mime: str) -> Kind | None:
    """The media kind of a MIME type the service accepts, or None."""
    for t in _TABLE.values():
        if t.mime == mime:
            return t.kind
    return None


def image_tokens(width: int, height: int) -> int:
    """258 tokens up to 384 px on both sides, else 258 per 768×768 tile."""
    if width <= 384 and height <= 384:
        return 258
    return 258 * math.ceil(width / 768) * math.ceil(height / 768)


def audio_tokens(seconds: float) -> int:
    return math.ceil(32 * seconds)


def video_tokens(seconds: float) -> int:
    # The service quotes 263–300 per second; estimate with the upper figure.
    return math.ceil(300 * seconds)


# -- media_resolution (files-api.md, "Models"; docs/service.md) ------------------------
# Gemini 3: one image costs a fixed count by resolution, whatever its size; video frames
# (one a second) 70 at low or medium, 280 at high. Unspecified: high for images, the
# documented default, and 70 a frame for video.
V3_IMAGE_TOKENS = {"low": 280, "medium": 560, "high": 1120}
V3_FRAME_TOKENS = {"low": 70, "medium": 70, "high": 280}
# Gemini 2.5 at MEDIA_RESOLUTION_LOW: 64 tokens an image, 66 a video frame; medium and
# high (and unspecified) count as image_tokens and video_tokens above.
V25_LOW_IMAGE_TOKENS = 64
V25_LOW_FRAME_TOKENS = 66


def image_tokens_for(family: str, resolution: str | None, width: int, height: int) -> int:
    """An image's prompt tokens on a model of ``family`` ("3", "2.5", other) at
    ``resolution`` ("low", "medium", "high", None: the default)."""
    if family == "3":
        return V3_IMAGE_TOKENS[resolution or "high"]
    if family == "2.5" and resolution == "low":
        return V25_LOW_IMAGE_TOKENS
    return image_tokens(width, height)


def video_tokens_for(family: str, resolution: str | None, seconds: float) -> int:
    """A video's prompt tokens: frames (one a second) and its sound (32 a second)."""
    if family == "3":
        return math.ceil((V3_FRAME_TOKENS[resolution or "low"] + 32) * seconds)
    if family == "2.5" and resolution == "low":
        return math.ceil((V25_LOW_FRAME_TOKENS + 32) * seconds)
    return video_tokens(seconds)
