"""tests/wire/ is a byte-identical copy of the shared corpus of live answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.wire_samples import WIRE

SHARED = Path(__file__).resolve().parents[3] / "shared" / "wire"


def test_copy_matches_shared_corpus() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not here (outside the project's workspace)")
    ours = {p.name: p.read_bytes() for p in WIRE.iterdir() if p.is_file()}
    theirs = {p.name: p.read_bytes() for p in SHARED.iterdir() if p.is_file()}
    assert sorted(theirs) == sorted(ours), "a sample was added or removed: copy it again"
    changed = [name for name in theirs if theirs[name] != ours[name]]
    assert not changed, f"samples corrected upstream, copy them again: {changed}"


def test_every_sample_is_json_with_source_and_body() -> None:
    files = sorted(WIRE.glob("*.json"))
    assert len(files) >= 36 and (WIRE / "README.md").is_file()
    for f in files:
        s = json.loads(f.read_text(encoding="utf-8"))
        assert s["source"] and s["what"] and "body" in s and "note" in s, f.name
