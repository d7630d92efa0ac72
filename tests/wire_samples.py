"""The copied corpus of live-service answers (tests/wire/, from ../shared/wire/)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

WIRE = Path(__file__).resolve().parent / "wire"


def path(number: int) -> Path:
    (found,) = WIRE.glob(f"{number:02d}-*.json")
    return found


@cache
def sample(number: int) -> dict[str, Any]:
    """The whole sample file (what, source, http_status, body, note…)."""
    return json.loads(path(number).read_text(encoding="utf-8"))


def body(number: int) -> Any:
    return sample(number)["body"]


def raw(number: int) -> bytes:
    """The body as the service sent it: raw_body_text when kept, else re-encoded JSON."""
    s = sample(number)
    if isinstance(s.get("raw_body_text"), str):
        return s["raw_body_text"].encode()
    return json.dumps(s["body"]).encode()
