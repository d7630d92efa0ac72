"""Media longer than one request takes (issue 18, item 10). Pure.

The File API stores a file of any length, but one generateContent request takes at
most MAX_VIDEO_SECONDS of video and MAX_AUDIO_SECONDS of audio (files-api.md):
longer media is uploaded, paid for and refused. So the length is checked before
anything is paid, and a file too long for every output it should have is not
uploaded at all.

A video asked for in clips (``ranges``: each request holds one clip, billed alone)
is never too long: its clips are made no longer than the limit. Audio is asked for
in ranges by words, with the whole audio in every request: its limit holds whatever
``ranges`` says.
"""

from __future__ import annotations

from mediasync.media.formats import MAX_AUDIO_SECONDS, MAX_VIDEO_SECONDS

LIMITS = {"video": float(MAX_VIDEO_SECONDS), "audio": float(MAX_AUDIO_SECONDS)}


def limit(kind: str) -> float | None:
    """Seconds of ``kind`` one request takes at most (None: no limit by length)."""
    return LIMITS.get(kind)


def _words(seconds: float) -> str:
    s = int(round(seconds))
    h, m = s // 3600, s % 3600 // 60
    if h and m:
        return f"{h} h {m} min"
    if h:
        return f"{h} h"
    return f"{m} min {s % 60} s" if m else f"{s} s"


def too_long(kind: str, duration: float | None, *, clips: bool, can_clip: bool) -> str | None:
    """Why no request can take this media for an output, or None (``duration`` unknown
    is never a verdict). ``clips``: the output asks for a video in clips; ``can_clip``:
    it could (text or subtitles), so the reason names the setting."""
    most = limit(kind)
    if most is None or duration is None or duration <= most:
        return None
    if kind == "video" and clips:
        return None
    reason = (f"too long: {_words(duration)} of {kind}; one request takes at most "
              f"{_words(most)} of {kind}")
    if kind == "video" and can_clip:
        reason += '; set ranges (e.g. "auto") on the prompt to ask for it in clips'
    return reason
