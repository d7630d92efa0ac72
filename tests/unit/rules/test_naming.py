"""Path questions asked per file, answered by string operations instead of pathlib
(over 100,000 files pathlib's parsing was most of their cost): each gives exactly
what the pathlib form gives, for every shape of path a scan, an event or a stored
row can hold."""

from __future__ import annotations

import os
from pathlib import Path, PurePath

import pytest

from mediasync.config import parse_config
from mediasync.media.formats import _TABLE, media_type
from mediasync.rules import desired
from mediasync.rules.naming import sidecar_for, sidecar_name

NAMES = ["a.png", "IMG_0001.JPG", "clip.mp4", ".hidden.mp4", ".hidden", "noext", "a.b.c.wav",
         "trailing.", "..", "...", "a..png", "x.tar.gz", "été.HEIC", "sp ace.mov", ".png",
         "a.png.", "b.", "c.MP3", "Ω.jpeg"]
DIRS = ["/", "/lib", "/lib/sub dir", "/a/./b", "/a//b", "//net", "rel", "rel/sub", "/lib/",
        "/lib/.", "/a/../b"]


def _paths() -> list[str]:
    out = []
    for d in DIRS:
        for n in NAMES:
            out.append(d.rstrip("/") + "/" + n if d != "/" else "/" + n)
            out.append(os.path.join(d, n))
    out += ["/", "/lib/", "/lib/.", "/lib/x/", "rel", ".", ""]
    return out


@pytest.mark.parametrize("key", [".caption.md", "*.en.srt", ".xmp", "*.xmp", ".t.de.txt"])
def test_sidecar_name_is_sidecar_for(key: str) -> None:
    for p in _paths():
        try:
            want: str | type[Exception] = str(sidecar_for(Path(p), key))
        except ValueError:
            want = ValueError
        if want is ValueError:
            with pytest.raises(ValueError):
                sidecar_name(p, key)
        else:
            assert sidecar_name(p, key) == want, p


@pytest.mark.parametrize("key", ["caption.md", ".", "*", "*x", ".a/b"])
def test_sidecar_name_refuses_a_bad_suffix_as_sidecar_for_does(key: str) -> None:
    with pytest.raises(ValueError):
        sidecar_for(Path("/lib/a.png"), key)
    with pytest.raises(ValueError):
        sidecar_name("/lib/a.png", key)


def test_media_type_of_a_name_is_that_of_its_path() -> None:
    for n in [*NAMES, *(f"x{s}" for s in _TABLE), *(f"x{s.upper()}" for s in _TABLE)]:
        assert media_type(n) == media_type(PurePath(n)) == media_type(PurePath("/d") / n), n


def test_folder_for_is_is_relative_to_of_the_normalised_path(tmp_path: Path) -> None:
    roots = ["/lib", "/lib2", "/lib/../other", "/a b/c"]
    config = parse_config({"folders": [{"path": r} for r in roots]})
    def old(path: str):  # the pathlib form it replaces
        p = PurePath(os.path.normpath(path))
        return next((f for f in config.folders if p.is_relative_to(f.path)), None)
    for p in [*_paths(), "/lib", "/lib2/x.png", "/lib/../lib2/a.png", "/other/a", "/a b/c/d",
              "/a b/cd", "/lib2", "/li", "/lib/x/../../lib2/y"]:
        assert config.folder_for(p) is old(p), p
        assert config.folder_for(Path(p or ".")) is old(p or "."), p
    top = parse_config({"folders": [{"path": "/"}]})
    assert top.folder_for("/x/y.png") is top.folders[0]


def test_desired_is_worked_out_per_file_as_before(tmp_path: Path) -> None:
    config = parse_config({"folders": [{"path": str(tmp_path), "prompts": [
        {"kinds": ["image"], "prompt": "Caption", "sidecar": ".caption.md"},
        {"kinds": ["video"], "prompt": "Subs", "sidecar": ".subs", "format": "subtitles",
         "subtitles": ["srt", "vtt"], "language": ["en", "de"], "naming": "stem"},
    ]}]})
    folder = config.folders[0]
    for kind, path in [("image", f"{tmp_path}/a.png"), ("video", f"{tmp_path}/d/clip.mp4"),
                       ("video", f"{tmp_path}/.h.mp4")]:
        first = desired.desired(folder, path, kind, "gemini-x")
        again = desired.desired(folder, path, kind, "gemini-x")
        assert first == again
        for d in first:
            assert d.sidecar == str(sidecar_for(Path(path), d.suffix))
            assert d.model == "gemini-x"
        assert {d.suffix for d in first} == (
            {".caption.md"} if kind == "image" else
            {"*.subs.en.srt", "*.subs.en.vtt", "*.subs.de.srt", "*.subs.de.vtt"})
    # another model, another folder object (a reload): worked out afresh
    assert desired.desired(folder, f"{tmp_path}/a.png", "image", "other")[0].model == "other"
    reloaded = parse_config({"folders": [{"path": str(tmp_path), "prompts": [
        {"kinds": ["image"], "prompt": "New", "sidecar": ".caption.md"}]}]}).folders[0]
    assert desired.desired(reloaded, f"{tmp_path}/a.png", "image", "m")[0].prompt == "New"


def test_a_shown_name_leads_back_to_the_file():
    """`status` and the XMP's source record names escaped (\\xe9); the file they name
    is found again from that form (outputs/formats.check_xmp)."""
    from mediasync.rules.naming import shown, unshown

    for raw in [b"IMG_1.png", b"IMG_\xe9.png", b"\xff\xfe.jpg", "café.jpg".encode(),
                b"a\xe9b\xc3.x"]:
        name = os.fsdecode(raw)
        assert unshown(shown(name)) == name, raw
    assert unshown("plain.png") == "plain.png"
    # Only bytes shown escapes (0x80 and above) are read back: "\x2f" stays text.
    assert unshown("odd\\x41.png") == "odd\\x41.png"
    assert unshown("a\\x2fb.png") == "a\\x2fb.png"
