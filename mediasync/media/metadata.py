"""Facts read cheaply from a local media file: its duration (for subtitles and the
{duration} placeholder) and when and where a photo was taken (EXIF).

Reads the first and last 64 KiB (and 64 KiB past a leading ID3v2 tag) and the EXIF
block only; never decodes media.
Every reader answers None for what it cannot tell: a fact is a nicety, never
a reason to fail.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from mediasync.media.probe import id3v2_size, probe

log = logging.getLogger("mediasync")

_WINDOW = 64 * 1024
_MIN_AFTER_TAG = 4 * 1024  # enough for the first frames (a Xing header, its successor)


@dataclass(frozen=True)
class Exif:
    taken: str | None = None  # "2024-05-01 14:03:22", as the camera wrote it
    gps: str | None = None  # "48.858370, 2.294481" (decimal degrees)


def duration(path: Path, mime: str) -> float | None:
    """Seconds of audio or video, from the container's header; None when unknown."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(_WINDOW)
            f.seek(max(0, size - _WINDOW))
            tail = f.read(_WINDOW)
            skip = id3v2_size(head)
            if skip and skip + _MIN_AFTER_TAG > len(head) and skip < size:
                # Cover art can push the first frame past the window: probe the file
                # as if it began after the tag, which is what the audio's length needs.
                f.seek(skip)
                head = f.read(_WINDOW)
                size -= skip
    except OSError:
        return None
    return probe(mime, head, tail, size).duration


def exif(path: Path) -> Exif:
    """DateTimeOriginal and GPS position of a photo, where its EXIF has them."""
    import exifread  # only prompts that ask for {taken} or {gps} pay for it

    try:
        with open(path, "rb") as f:
            tags = exifread.process_file(f, details=False)
    except Exception as e:  # noqa: BLE001 - a damaged EXIF block is only a missing fact
        log.debug("no EXIF from %s: %s", path, e)
        return Exif()
    taken = None
    for name in ("EXIF DateTimeOriginal", "EXIF DateTimeDigitized", "Image DateTime"):
        if name in tags:
            text = str(tags[name]).strip()
            # "2024:05:01 14:03:22" → "2024-05-01 14:03:22"
            taken = text.replace(":", "-", 2) if len(text) >= 10 else text or None
            break
    lat = _degrees(tags.get("GPS GPSLatitude"), tags.get("GPS GPSLatitudeRef"), "S")
    lon = _degrees(tags.get("GPS GPSLongitude"), tags.get("GPS GPSLongitudeRef"), "W")
    gps = f"{lat:.6f}, {lon:.6f}" if lat is not None and lon is not None else None
    return Exif(taken=taken, gps=gps)


def _degrees(tag: object, ref: object, negative: str) -> float | None:
    values = getattr(tag, "values", None)
    if not values or len(values) != 3:
        return None
    try:
        d, m, s = (float(v.num) / float(v.den) for v in values)
    except (AttributeError, ZeroDivisionError, TypeError, ValueError):
        return None
    value = d + m / 60 + s / 3600
    return -value if str(ref).strip().upper() == negative else value
