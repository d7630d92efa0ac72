"""Where an output's file lives, from the output's key (its sidecar suffix).

Most sidecars append a suffix to the file name (photo.jpg → photo.jpg.caption.md,
photo.jpg.xmp). Players and raw developers also look for the stem (clip.mp4 →
clip.en.srt, photo.cr2 → photo.xmp); such keys carry a leading "*", so the key
alone says where the file goes, also after a rename. Pure.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

STEM = "*"


def shown(name: str) -> str:
    """A file name as text anyone can print or send: a name that is not UTF-8
    (the OS hands it over surrogate-escaped) shows its odd bytes as ``\\xe9``."""
    if name.isascii():
        return name
    try:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeError:  # a surrogate no file name holds: \\udxxx
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


def unshown(shown_name: str) -> str:
    """The name ``shown`` made ``shown_name`` from, where it escaped bytes that are not
    UTF-8 (\\xe9: always 0x80 or above); as it is otherwise. A name that holds such
    text itself reads as escaped: a caller that looks a file up tries ``shown_name``
    as it is too."""
    if "\\x" not in shown_name:
        return shown_name
    raw = re.sub(rb"\\x([89a-f][0-9a-f])", lambda m: bytes([int(m[1], 16)]),
                 shown_name.encode("utf-8"))
    return os.fsdecode(raw)


def sidecar_path(source: Path, suffix: str) -> Path:
    """photo.jpg + .caption.md → photo.jpg.caption.md, in the same directory."""
    if not suffix.startswith(".") or "/" in suffix or len(suffix) < 2:
        raise ValueError(f"bad sidecar suffix {suffix!r}")
    return source.with_name(source.name + suffix)


def output_key(suffix: str, naming: str) -> str:
    """The store key of an output: the suffix, marked when named after the stem."""
    return STEM + suffix if naming == "stem" else suffix


def sidecar_for(source: Path, key: str) -> Path:
    """The sidecar path for ``source``: clip.mp4 + "*.en.srt" → clip.en.srt."""
    if key.startswith(STEM):
        suffix = key[len(STEM):]
        # A dotfile stem (".hidden.mp4" → ".hidden") still gets a name of its own.
        return sidecar_path(source.with_name(source.stem), suffix)
    return sidecar_path(source, key)


def sidecar_name(source: str, key: str) -> str:
    """``str(sidecar_for(Path(source), key))`` by string operations when ``source`` is
    in the form pathlib would give it (absolute; no empty, ``.`` or trailing part),
    as scanned paths are: asked for each output of each file, pathlib's parsing was
    most of the cost over a library of 100,000."""
    if (not source.startswith("/") or source.endswith(("/", "/.")) or "//" in source
            or "/./" in source):
        return str(sidecar_for(Path(source), key))
    head, _, name = source.rpartition("/")
    suffix = key
    if key.startswith(STEM):
        suffix = key[len(STEM):]
        i = name.rfind(".")  # PurePath.stem's rule
        if 0 < i < len(name) - 1:
            name = name[:i]
    if not suffix.startswith(".") or "/" in suffix or len(suffix) < 2:
        raise ValueError(f"bad sidecar suffix {suffix!r}")
    return f"{head}/{name}{suffix}"


def relative(path: str, folder: str) -> str:
    """``os.path.relpath(path, folder)``, by cutting the prefix when the rest is plain
    (no pathlib per file: `status` names 100,000 files this way)."""
    prefix = folder if folder.endswith("/") else folder + "/"
    rest = path[len(prefix):]
    # No empty, "." or ".." part; none starts with "." (a dotfile takes the long way).
    if (path.startswith(prefix) and rest and rest[0] not in "./" and "/." not in rest
            and "//" not in rest and rest[-1] != "/"):
        return rest
    return os.path.relpath(path, folder)
