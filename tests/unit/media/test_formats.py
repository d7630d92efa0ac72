from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from mediasync.media import formats
from mediasync.media.formats import (
    FILE_TTL_SECONDS,
    KINDS,
    MAX_AUDIO_SECONDS,
    MAX_FILE_BYTES,
    MAX_PROJECT_BYTES,
    MAX_VIDEO_SECONDS,
    SUPPORTED_MIME_TYPES,
    MediaType,
    audio_tokens,
    image_tokens,
    kind_of_mime,
    media_type,
    video_tokens,
)

# The service's list (files-api.md, "Supported media").
SERVICE_MIMES = {
    "image": {"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"},
    "audio": {"audio/wav", "audio/mp3", "audio/aiff", "audio/aac", "audio/ogg", "audio/flac"},
    "video": {"video/mp4", "video/mpeg", "video/mov", "video/avi", "video/x-flv", "video/mpg",
              "video/webm", "video/wmv", "video/3gpp"},
}


@pytest.mark.parametrize(
    "name, kind, mime",
    [
        ("a.png", "image", "image/png"),
        ("a.jpg", "image", "image/jpeg"),
        ("a.jpeg", "image", "image/jpeg"),
        ("a.webp", "image", "image/webp"),
        ("a.heic", "image", "image/heic"),
        ("a.heif", "image", "image/heif"),
        ("a.wav", "audio", "audio/wav"),
        ("a.mp3", "audio", "audio/mp3"),  # not audio/mpeg, as mimetypes says
        ("a.aiff", "audio", "audio/aiff"),
        ("a.aif", "audio", "audio/aiff"),
        ("a.aac", "audio", "audio/aac"),
        ("a.ogg", "audio", "audio/ogg"),
        ("a.flac", "audio", "audio/flac"),
        ("a.mp4", "video", "video/mp4"),
        ("a.mpeg", "video", "video/mpeg"),
        ("a.mpg", "video", "video/mpg"),
        ("a.mov", "video", "video/mov"),  # not video/quicktime
        ("a.avi", "video", "video/avi"),
        ("a.flv", "video", "video/x-flv"),
        ("a.webm", "video", "video/webm"),
        ("a.wmv", "video", "video/wmv"),
        ("a.3gp", "video", "video/3gpp"),
    ],
)
def test_media_type(name, kind, mime):
    assert media_type(name) == MediaType(kind, mime)
    assert kind_of_mime(mime) == kind


@pytest.mark.parametrize("name", ["IMG_0001.JPG", "Memo.Mp3", "CLIP.MOV", "x.HeIc"])
def test_extension_is_case_insensitive(name):
    assert media_type(name) is not None


@pytest.mark.parametrize(
    "name",
    ["a.txt", "a.gif", "a.mkv", "a.pdf", "noext", "", ".jpg", "a.jpg.part", "a.caption.md",
     "jpg", "a.jpg.", "a.jp g"],
)
def test_unsupported(name):
    assert media_type(name) is None


def test_accepts_paths_and_uses_the_last_suffix():
    assert media_type(Path("/x/y.dir/photo.png")).kind == "image"
    assert media_type(PurePosixPath("a.tar.mp3")).kind == "audio"
    assert media_type("dir.jpg/notes") is None
    assert media_type("new\nline.webm").kind == "video"
    assert media_type("ünï 写真.jpeg").kind == "image"


def test_table_matches_the_service():
    by_kind: dict[str, set[str]] = {k: set() for k in KINDS}
    for mime in SUPPORTED_MIME_TYPES:
        by_kind[kind_of_mime(mime)].add(mime)
    assert by_kind == SERVICE_MIMES
    # mime prefix agrees with kind
    for mime in SUPPORTED_MIME_TYPES:
        assert mime.split("/")[0] == kind_of_mime(mime)


def test_kind_of_unknown_mime():
    assert kind_of_mime("audio/mpeg") is None
    assert kind_of_mime("video/quicktime") is None
    assert kind_of_mime("") is None


def test_media_type_is_frozen_and_hashable():
    t = media_type("a.jpg")
    with pytest.raises(AttributeError):
        t.kind = "video"  # type: ignore[misc]
    assert {t, media_type("b.jpeg")} == {MediaType("image", "image/jpeg")}


def test_limits():
    assert MAX_FILE_BYTES == 2_000_000_000
    assert MAX_PROJECT_BYTES == 21_474_836_480  # wire/02: quotaValue "21474836480"
    assert FILE_TTL_SECONDS == 48 * 3600
    assert MAX_VIDEO_SECONDS == 3600
    assert MAX_AUDIO_SECONDS == 34200
    assert KINDS == ("image", "audio", "video")


@pytest.mark.parametrize(
    "w, h, tokens",
    [
        (1, 1, 258),
        (384, 384, 258),
        (385, 384, 258),  # one tile
        (768, 768, 258),
        (769, 768, 516),
        (1536, 1536, 1032),
        (4032, 3024, 258 * 6 * 4),
        (100, 2000, 258 * 3),
    ],
)
def test_image_tokens(w, h, tokens):
    assert image_tokens(w, h) == tokens


def test_audio_and_video_tokens():
    assert audio_tokens(0) == 0
    assert audio_tokens(1) == 32
    assert audio_tokens(0.5) == 16
    assert audio_tokens(0.01) == 1  # rounds up
    assert audio_tokens(MAX_AUDIO_SECONDS) == 32 * 34200
    assert video_tokens(0) == 0
    assert video_tokens(1) == 300  # the upper estimate
    assert video_tokens(3.5) == 1050
    assert video_tokens(0.001) == 1


def test_module_is_pure():
    # shared with the emulator: constants and pure functions, no I/O imports
    src = Path(formats.__file__).read_text(encoding="utf-8")
    for forbidden in ("import os", "import httpx", "open(", "import sqlite3"):
        assert forbidden not in src
