"""What a single TOML value of the config must be, and the one-line error when it is not.

Owns :class:`ConfigError`, durations ("500ms", "6h") and the checks every table of
the config shares (known keys, strings, booleans, positive integers, paths,
choices). No knowledge of which table holds what: that is :mod:`mediasync.config`.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration fault; ``str()`` is the one-line message for the user."""

    def __init__(self, message: str, *, key: str = "", source: Path | str | None = None):
        self.message = message
        self.key = key
        self.source = source
        prefix = "".join(f"{p}: " for p in (source, key) if p)
        super().__init__(prefix + message)


# --- durations -------------------------------------------------------------

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)")
_DURATION_HINT = "(use e.g. 500ms, 2s, 10m, 6h)"


def parse_duration(text: str | int | float, key: str = "") -> float:
    """Seconds from "500ms", "2s", "10m", "6h", "1h30m", or a plain number of seconds."""
    # bool is an int subclass; `settle = true` is a mistake, not one second.
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    elif isinstance(text, str):
        s = text.strip()
        try:
            seconds = float(s)
        except ValueError:
            seconds = _parse_units(s)
            if seconds is None:
                raise ConfigError(f"{json.dumps(text)} is not a duration {_DURATION_HINT}",
                                  key=key) from None
    else:
        raise ConfigError(f"{text!r} is not a duration {_DURATION_HINT}", key=key)
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{text!r} is not a duration {_DURATION_HINT}", key=key)
    return seconds


def _parse_units(s: str) -> float | None:
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if s else None


def format_duration(seconds: float) -> str:
    """The inverse of :func:`parse_duration`, to the millisecond: 5400 → "1h30m"."""
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    out = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for k in table:
        if k in allowed:
            continue
        key = f"{where}.{k}" if where else k
        hint = ""
        close = difflib.get_close_matches(k, allowed, n=1, cutoff=0.6)
        if close:
            hint = f"; did you mean '{close[0]}'?"
        elif where == "api" and "key" in k.lower():
            # The key itself never goes in the config file.
            hint = "; put the API key in a file and name it with api.key_file"
        raise ConfigError(f"unknown key{hint}", key=key)


def as_table(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be a table ([{key}]), not {type_name(value)}", key=key)
    return value


def type_name(value: Any) -> str:
    return {
        bool: "a boolean", int: "an integer", float: "a number", str: "a string",
        list: "an array", dict: "a table",
    }.get(type(value), type(value).__name__)


def as_str(value: Any, key: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"must be a string, not {type_name(value)}", key=key)
    if not empty and not value.strip():
        raise ConfigError("must not be empty", key=key)
    return value


def as_bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false, not {type_name(value)}", key=key)
    return value


def as_pos_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"must be a positive integer, not {type_name(value)}", key=key)
    if value < 1:
        raise ConfigError(f"must be a positive integer, not {value}", key=key)
    return value


def as_str_list(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"must be an array of strings, not {type_name(value)}", key=key)
    return tuple(as_str(v, f"{key}[{i}]") for i, v in enumerate(value))


def as_duration(value: Any, key: str, *, positive: bool = False) -> float:
    seconds = parse_duration(value, key)
    if positive and seconds <= 0:
        raise ConfigError(f"{value!r} must be longer than zero", key=key)
    return seconds


def as_path(value: Any, key: str, base: Path | None, home: Path | None) -> Path:
    text = as_str(value, key)
    if "\0" in text:
        raise ConfigError("must not contain a NUL character", key=key)
    if text == "~" or text.startswith("~/"):
        h = home if home is not None else Path.home()
        p = h / text[2:] if len(text) > 1 else h
    else:
        p = Path(os.path.expanduser(text))
    if not p.is_absolute():
        # Relative to the config file, so the file means the same from any cwd.
        p = (base if base is not None else Path.cwd()) / p
    # normpath, not resolve(): no filesystem access, and symlinked mounts keep
    # the name the user wrote.
    return Path(os.path.normpath(p))


def as_choice(value: Any, allowed: Sequence[str], key: str) -> str:
    text = as_str(value, key)
    if text not in allowed:
        close = difflib.get_close_matches(text, allowed, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{text!r} is not one of {', '.join(allowed)}{hint}", key=key)
    return text


