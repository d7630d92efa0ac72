"""Sizes as people write them: ``500MB``, ``18GB``, ``1.5GiB``, ``2000000`` (bytes).

Shared by the config (``storage_budget``, ``proxy_above``) and the emulator's flags.
Decimal units are powers of 1000, as `status` prints sizes (rules/units.py
human_bytes); the ``…iB`` units are powers of 1024 (the service's 20 GB store is
20 GiB: wire/02's quotaValue 21474836480). Pure.
"""

from __future__ import annotations

import re

_UNITS = {
    "": 1, "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*")
HINT = "(write e.g. 500MB, 18GB, 1.5GiB)"


def human_bytes(n: float) -> str:
    """``34.0 MB``: decimal units, one decimal (what `status` and the log print)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def parse_size(text: str | int) -> int:
    """Bytes from ``"500MB"``, ``"18GB"``, ``"1.5GiB"`` or a plain number of bytes.
    Raises ValueError, with the hint of how to write one."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ValueError(f"{text!r} is not a size {HINT}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"{text!r} is not a size {HINT}")
        return text
    m = _SIZE.fullmatch(text)
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size {HINT}")
    return round(float(m.group(1)) * _UNITS[unit])
