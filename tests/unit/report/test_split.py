"""`status` over a large library: ranges of paths decided in forked processes join into
the very text one process writes, also when a process does not answer."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from mediasync.config import parse_config
from mediasync.report import split, status
from mediasync.rules import desired
from mediasync.store import OutputRow, PathRow, Store

NOW = 1_000_000.0


def _library(tmp_path: Path) -> tuple[Path, object]:
    """Two folders (one no longer configured), names not UTF-8, every kind of state."""
    a, b, gone = tmp_path / "a", tmp_path / "b", tmp_path / "gone"
    config = parse_config({"folders": [{"path": str(a)}, {"path": str(b)}]},
                          source=tmp_path / "c.toml")
    db = tmp_path / "state.db"
    store = Store(db)
    rng = random.Random(3)
    for i in range(400):
        folder = rng.choice([a, a, b, gone])
        name = rng.choice(["x", "d/y", "\udce9/z", "Z"]) + f"{i:03d}.png"
        sha = f"s{rng.randrange(60)}"
        problem = "empty file (0 bytes)" if rng.random() < 0.05 else None
        path = str(folder / name)
        store.put_path(PathRow(path, str(folder), 10, 1, i, None if problem else sha, "image",
                               "image/png", problem, None, 0.0))
        if rng.random() < 0.1:
            store.mark_gone(path, 1.0)
        folder_config = config.folder_for(path)
        for want in desired.desired(folder_config, path, "image", config.api.model) \
                if folder_config else []:
            if rng.random() < 0.8:
                store.put_output(OutputRow(
                    path, want.suffix, sha, want.prompt_hash, want.model, want.sidecar, "h",
                    None, rng.choice(["written", "kept_edit", "failed", "blocked"]), None,
                    rng.randrange(9), rng.randrange(9),
                    rng.choice([None, NOW + 60]), 1, NOW, thoughts_tokens=rng.randrange(3)))
    for n in range(60):
        store.ensure_content(f"s{n}", 10, "image/png", "image", NOW)
        if n % 4:
            store.update_content(f"s{n}", NOW, remote_name=f"files/{n}", uri="u",
                                 expires_at=NOW + n * 3600.0)
    store.close()
    return db, config


def _text(config, verbose: bool = True):
    return lambda reports: status.summarise(reports, config, NOW, verbose)


@pytest.mark.parametrize("verbose", [True, False])
def test_the_ranges_join_into_the_text_one_process_writes(tmp_path, monkeypatch, verbose):
    db, config = _library(tmp_path)
    store = Store(db, readonly=True)
    reports = status.build(store, config, NOW, [])
    store.close()
    whole = status.render_text(reports, config, NOW, verbose=verbose)
    assert "failed" in whole and "synced" in whole and "pending" in whole
    assert not verbose or ("Z" in whole and "\\xe9" in whole)  # names at both ends
    monkeypatch.setattr(split, "SPLIT_AT", 50)
    forks = _count_forks(monkeypatch)
    for ways in (1, 2, 3, 7):
        forks.append(0)
        parts = split.parts(db, config, NOW, [], _text(config, verbose), ways=ways)
        assert len(parts) == ways
        assert status.render_parts(parts, config) == whole
        assert sum(p.not_kept for p in parts) == sum(r.note == status.NOT_KEPT for r in reports)
    assert forks == [0, 1, 2, 6]  # every range but the first read by a forked process


def _count_forks(monkeypatch, alone: bool = True) -> list[int]:
    """Adds 1 to the last number for each process forked (the caller appends a 0 per
    call). ``alone``: the test process passes for one with no other thread (a test
    before may have left an idle one, e.g. a server), which would keep it from forking."""
    if alone:
        monkeypatch.setattr(split.threading, "active_count", lambda: 1)
    forks: list[int] = []
    real = split._fork

    def counted(work):
        child = real(work)
        forks[-1] += child is not None
        return child

    monkeypatch.setattr(split, "_fork", counted)
    return forks


def test_below_the_threshold_one_process_does_it_all(tmp_path):
    db, config = _library(tmp_path)
    assert len(split.parts(db, config, NOW, [], _text(config), ways=4)) == 1


def test_a_range_whose_process_fails_is_read_here_instead(tmp_path, monkeypatch):
    db, config = _library(tmp_path)
    whole = status.render_parts(split.parts(db, config, NOW, [], _text(config), ways=1), config)
    monkeypatch.setattr(split, "SPLIT_AT", 50)
    parent = os.getpid()
    summarise = status.summarise
    calls = []  # ranges read here (a child's list is its own)

    def dies_in_a_child(*args, **kwargs):
        if os.getpid() != parent:
            raise RuntimeError("the child's reading failed")
        calls.append(parent)
        return summarise(*args, **kwargs)

    monkeypatch.setattr(status, "summarise", dies_in_a_child)
    forks = _count_forks(monkeypatch)
    forks.append(0)
    parts = split.parts(db, config, NOW, [], _text(config), ways=3)
    assert status.render_parts(parts, config) == whole
    assert forks == [2]
    assert calls.count(parent) == 3  # its own range, then the two the children did not send


def test_a_process_with_other_threads_reads_every_range_itself(tmp_path, monkeypatch):
    import threading

    db, config = _library(tmp_path)
    whole = status.render_parts(split.parts(db, config, NOW, [], _text(config), ways=1), config)
    monkeypatch.setattr(split, "SPLIT_AT", 50)
    forks = _count_forks(monkeypatch, alone=False)
    forks.append(0)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        parts = split.parts(db, config, NOW, [], _text(config), ways=3)
    finally:
        stop.set()
        other.join()
    assert forks == [0] and status.render_parts(parts, config) == whole


@pytest.mark.parametrize("indent", [None, 2])
def test_the_ranges_join_into_the_json_one_process_writes(tmp_path, monkeypatch, indent):
    import json

    db, config = _library(tmp_path)
    store = Store(db, readonly=True)
    reports = status.build(store, config, NOW, [])
    store.close()
    doc = {**status.render_json(reports, "halted"), "after": {"a": [1, {"b": None}]}}
    whole = json.dumps(doc, indent=indent)
    monkeypatch.setattr(split, "SPLIT_AT", 50)
    forks = _count_forks(monkeypatch)
    for ways in (1, 2, 5):
        forks.append(0)
        parts = split.parts(db, config, NOW, [], lambda rs: status.json_part(rs, indent),
                            ways=ways)
        mark = "\0files\0"
        joined = json.dumps({**doc, "files": mark}, indent=indent).replace(
            json.dumps(mark), status.files_json(parts, indent), 1)
        assert joined == whole
        assert {k: sum(p.tokens[k] for p in parts) for k in doc["tokens"]} == doc["tokens"]
    assert forks == [0, 1, 4]
    empty = json.dumps({"files": []}, indent=indent)
    assert json.dumps({"files": "m"}, indent=indent).replace('"m"', status.files_json(
        [status.JsonPart([], {})], indent)) == empty
