from __future__ import annotations

from pathlib import Path, PurePath, PurePosixPath

import pytest

from mediasync.config import FolderConfig
from mediasync.local.candidates import (
    IGNORED_DIR_NAMES,
    ignored_dir,
    ignored_name,
    is_candidate,
)
from mediasync.local.sidecar import TEMP_PREFIX
from mediasync.media.formats import MediaType

SUFFIXES = (".caption.md", ".transcript.txt")


def folder(**kw) -> FolderConfig:
    return FolderConfig(path=Path("/m"), **kw)


def cand(rel: str, f: FolderConfig | None = None, suffixes=SUFFIXES) -> MediaType | None:
    return is_candidate(PurePosixPath(rel), f or folder(), suffixes)


# --- directories ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "@eaDir",
        "#recycle",
        "#snapshot",
        "@Recycle",
        ".stfolder",
        ".stversions",
        ".Trashes",
        ".Trash-1000",
        ".Trash-0",
        ".Spotlight-V100",
        ".fseventsd",
        ".TemporaryItems",
        "$RECYCLE.BIN",
        "$Recycle.Bin",
        "System Volume Information",
        "lost+found",
        ".git",
        ".AppleDouble",
        "__MACOSX",
        ".snapshot",
        ".hidden",
        "",
    ],
)
def test_ignored_dirs(name):
    assert ignored_dir(name)


@pytest.mark.parametrize(
    "name", ["Photos", "2024", "eaDir", "recycle", "-dash", "with space", "写真", "a\nb", "Trash"]
)
def test_normal_dirs(name):
    assert not ignored_dir(name)


def test_ignored_dir_names_are_casefolded():
    assert all(n == n.casefold() for n in IGNORED_DIR_NAMES)
    assert ignored_dir("@EADIR") and ignored_dir("LOST+FOUND")


# --- names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        ".hidden.jpg",
        ".DS_Store",
        "._photo.jpg",  # AppleDouble resource fork
        f"{TEMP_PREFIX}0123abcd",
        "video.mp4.part",
        "video.MP4.PART",
        "photo.jpg.crdownload",
        "x.tmp",
        "x.partial",
        "x.download",
        ".x.swp",
        "x.swp",
        "~$report.docx",
        "~lock.jpg",
        "photo.jpg.caption.md",
        "memo.mp3.transcript.txt",
        "a.jpg.filepart",
        "movie.mkv.!qB",
        "",
    ],
)
def test_ignored_names(name):
    assert ignored_name(name, SUFFIXES)


@pytest.mark.parametrize(
    "name",
    [
        "photo.jpg",
        "with space.jpg",
        "ünïcødé 写真.jpg",
        "new\nline.jpg",
        "-starts-with-dash.jpg",
        "part.jpg",
        "photo.partial.jpg",
        "tmp",
        "x~.jpg",
        "caption.md",  # not ending with ".caption.md"
    ],
)
def test_normal_names(name):
    assert not ignored_name(name, SUFFIXES)


def test_sidecar_suffixes_come_from_the_caller():
    assert not ignored_name("a.jpg.alt.txt", SUFFIXES)
    assert ignored_name("a.jpg.alt.txt", [".alt.txt"])
    assert ignored_name("a.jpg.alt.txt", iter([".alt.txt"]))  # any iterable
    assert not ignored_name("a.jpg", [""])  # an empty suffix must not swallow everything


# --- is_candidate ---------------------------------------------------------------------


def test_media_kinds():
    assert cand("a.jpg") == MediaType("image", "image/jpeg")
    assert cand("sub/dir/memo.MP3") == MediaType("audio", "audio/mp3")
    assert cand("clip.mov") == MediaType("video", "video/mov")
    assert cand("notes.txt") is None
    assert cand("noext") is None
    assert cand("archive.jpg.zip") is None


@pytest.mark.parametrize(
    "rel",
    ["with space.jpg", "ünïcødé/写真.jpg", "new\nline.jpg", "-starts-with-dash.jpg",
     "dir with space/-x/a.png", "emoji 🎉.mp3"],
)
def test_odd_names_are_candidates(rel):
    assert cand(rel) is not None


@pytest.mark.parametrize(
    "rel",
    [
        "@eaDir/photo.jpg/SYNOPHOTO_THUMB_XL.jpg",
        "a/@eaDir/b.jpg",
        ".stfolder/x.jpg",
        ".Trash-1000/files/x.jpg",
        "$RECYCLE.BIN/x.jpg",
        "deep/down/.git/x.png",
        "photo.jpg.caption.md",
        ".photo.jpg",
        f"{TEMP_PREFIX}abc",
        "dl/movie.mp4.part",
        "~temp.jpg",
        "",
        ".",
        "../outside.jpg",
        "a/../../outside.jpg",
    ],
)
def test_not_candidates(rel):
    assert cand(rel) is None


def test_absolute_path_is_not_a_candidate():
    assert is_candidate(PurePosixPath("/m/a.jpg"), folder(), SUFFIXES) is None


def test_accepts_any_purepath():
    assert is_candidate(PurePath("sub/a.jpg"), folder(), SUFFIXES) is not None
    assert is_candidate(Path("sub/a.jpg"), folder(), SUFFIXES) is not None


def test_not_recursive():
    f = folder(recursive=False)
    assert cand("a.jpg", f) is not None
    assert cand("sub/a.jpg", f) is None


def test_include():
    f = folder(include=("*.jpg",))
    assert cand("a.jpg", f) is not None
    assert cand("sub/a.JPG", f) is not None  # case-insensitive, like the extension table
    assert cand("a.png", f) is None
    assert cand("a.mp3", f) is None


def test_include_a_subfolder():
    f = folder(include=("Camera",))
    assert cand("Camera/a.jpg", f) is not None
    assert cand("Camera/2024/a.jpg", f) is not None
    assert cand("Other/a.jpg", f) is None
    assert cand("a.jpg", f) is None


def test_exclude():
    f = folder(exclude=("*.png", "Private", "drafts/*", "**/raw/*.jpg"))
    assert cand("a.jpg", f) is not None
    assert cand("a.png", f) is None
    assert cand("sub/a.PNG", f) is None
    assert cand("Private/a.jpg", f) is None
    assert cand("x/private/y/a.jpg", f) is None  # a folder name at any depth
    assert cand("drafts/a.jpg", f) is None
    assert cand("drafts/deep/a.jpg", f) is None
    assert cand("raw/a.jpg", f) is None  # "**/" matches zero folders too
    assert cand("2024/raw/a.jpg", f) is None
    assert cand("2024/raw/a.mp3", f) is not None
    assert cand("notprivate/a.jpg", f) is not None


def test_exclude_wins_over_include():
    f = folder(include=("*.jpg",), exclude=("secret*",))
    assert cand("a.jpg", f) is not None
    assert cand("secret.jpg", f) is None
    assert cand("secret/a.jpg", f) is None


def test_glob_on_relative_path():
    f = folder(include=("2024/*/*.jpg",))
    assert cand("2024/01/a.jpg", f) is not None
    assert cand("2023/01/a.jpg", f) is None


def test_glob_special_characters_in_names():
    f = folder(exclude=("[draft]*",))  # a character class, as fnmatch means it
    assert cand("d.jpg", f) is None
    assert cand("x.jpg", f) is not None
    assert cand("[draft] x.jpg", folder(exclude=("[[]draft]*",))) is None


def test_ignored_dirs_beat_include():
    f = folder(include=("**/*.jpg",))
    assert cand("@eaDir/a.jpg", f) is None
    assert cand("x/a.jpg", f) is not None
