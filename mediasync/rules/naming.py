"""Where an output's file lives, from the output's key (its sidecar suffix).

Most sidecars append a suffix to the file name (photo.jpg → photo.jpg.caption.md,
photo.jpg.xmp). Players and raw developers also look for the stem (clip.mp4 →
clip.en.srt, photo.cr2 → photo.xmp); such keys carry a leading "*", so the key
alone says where the file goes, also after a rename. Pure.
"""

from __future__ import annotations

from pathlib import Path

STEM = "*"


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
