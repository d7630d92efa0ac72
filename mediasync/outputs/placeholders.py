"""Placeholders in prompts: {filename}, {folder}, {relpath}, {duration}, {taken},
{gps}, {language}. Pure.

A placeholder the file cannot fill becomes empty; an unknown {word} (or a JSON
example in the prompt) is left exactly as written. Not str.format: braces in a
prompt are the user's text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

NAMES = ("filename", "folder", "relpath", "duration", "taken", "gps", "language")
_PATTERN = re.compile(r"\{(" + "|".join(NAMES) + r")\}")
# Facts that cost a read of the file: computed only when a prompt asks for them.
NEEDS_EXIF = ("taken", "gps")


def used(template: str) -> set[str]:
    """The placeholder names a prompt uses."""
    return set(_PATTERN.findall(template))


def fill(template: str, values: Mapping[str, str | None]) -> str:
    return _PATTERN.sub(lambda m: values.get(m.group(1)) or "", template)


def format_duration(seconds: float | None) -> str | None:
    """12.5 → "12.5 s", 754 → "12 min 34 s" (for a prompt, not for parsing)."""
    if seconds is None:
        return None
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min {secs} s"
    return f"{minutes} min {secs} s"
