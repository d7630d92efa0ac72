"""The store is a budget (issue 15): a library three times the service's store is
captioned in full by `sync`, without a wait for space, and `status` shows the store;
a renewal in a store its copies fill makes room instead of failing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mediasync.emulator import Emulator, EmulatorConfig
from mediasync.media.samples import png_bytes
from tests.helpers import cli, write_config

KB = 1000
FILE = 100 * KB  # each photo
FILES = 12
STORE = 4 * FILE  # the emulator's store holds a third of the library


@pytest.fixture
def emu() -> Iterator[Emulator]:
    # The full store answered as wire/03 does: RetryInfo of 9223372036854775807 s.
    e = Emulator(EmulatorConfig(port=0, max_project_bytes=STORE,
                                storage_form="retryinfo")).start()
    yield e
    e.stop()


def photo(seed: int) -> bytes:
    head = png_bytes(seed=seed)
    return head + bytes(FILE - len(head))  # padded after IEND: a 100 kB photo


@contextmanager
def renewing(tmp_path: Path, files: int, size: int, store: int,
             seed: int) -> Iterator[tuple[Emulator, Path]]:
    """``files`` photos of ``size`` bytes in a store of ``store`` bytes, budget 100%,
    every copy due for renewal as soon as it is made (ttl 59 min, renew_before 1 h)."""
    e = Emulator(EmulatorConfig(port=0, max_project_bytes=store, ttl=59 * 60,
                                storage_form="retryinfo")).start()
    try:
        cfg = write_config(tmp_path, e.base_url,
                           daemon={"storage_budget": "100%", "renew_before": "1h"})
        for i in range(files):
            head = png_bytes(seed=seed + i)
            (tmp_path / "inbox" / f"p{i:02}.png").write_bytes(head + bytes(size - len(head)))
        yield e, cfg
    finally:
        e.stop()


def test_a_library_three_times_the_store_is_captioned_in_full(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url)  # the default budget: 90% of the store
    for i in range(FILES):
        (tmp_path / "inbox" / f"p{i:02}.png").write_bytes(photo(i))
    r = cli(cfg, "sync", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(list((tmp_path / "inbox").glob("*.caption.md"))) == FILES
    assert "waiting for space" not in r.stdout + r.stderr
    stats = emu.stats()
    assert stats["live_bytes"] <= STORE
    # Room was made by deleting copies already used; at most the copies the budget keeps
    # (newest first: 2 of 360 kB, with room for a renewal) were uploaded twice.
    assert FILES <= stats["uploads_finalized"] <= FILES + 2, stats
    assert stats["requests"]["generate"] == FILES

    status = json.loads(cli(cfg, "status", "--json").stdout)
    assert {f["state"] for f in status["files"]} == {"synced"}
    store = status["store"]
    assert store["size"] == STORE and store["budget"] == int(0.9 * STORE)
    assert store["mine"] == stats["live_bytes"] and store["mine"] <= store["budget"]
    not_kept = [f for f in status["files"] if f["note"] and "storage budget" in f["note"]]
    assert len(not_kept) >= FILES - 3
    assert all(f["note"] == "captioned, copy not kept (storage budget)" for f in not_kept)
    text = cli(cfg, "status").stdout
    assert "captioned, copy not kept (storage budget)" in text
    assert "store:" in text, text


def test_renewals_in_a_store_95_percent_full_all_fit_one_at_a_time(tmp_path):
    # Twenty 50 kB photos fill 95% of a 1.05 MB store. Every copy is due for renewal as
    # soon as it is made (ttl 59 min, renew_before 1 h), so each needs room for a second
    # copy: once the full store names its size, renewals go one at a time and delete
    # the copy they replace before the next starts. None lapses, none waits for space.
    files, size = 20, 50 * KB
    with renewing(tmp_path, files, size, files * size + size, seed=100) as (e, cfg):
        r = cli(cfg, "sync", timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        stats = e.stats()
        assert stats["uploads_finalized"] == 2 * files, stats  # every copy renewed once
        assert stats["live_files"] == files and stats["live_bytes"] <= files * size + size
        status = json.loads(cli(cfg, "status", "--json").stdout)
        assert {f["state"] for f in status["files"]} == {"synced"}
        assert not [f for f in status["files"] if f["note"]], status["files"]  # 0 lapses
        assert "waiting for space" not in r.stdout + r.stderr


def test_a_file_that_shrinks_is_planned_again_by_its_new_size(tmp_path, emu):
    # A kept photo shrinks to a tenth (a re-export): its new bytes are a new content,
    # captioned once more; the old content's copy is deleted and the budget counts the
    # new size, so the bytes freed go to other copies and nothing waits for space.
    cfg = write_config(tmp_path, emu.base_url)
    inbox = tmp_path / "inbox"
    for i in range(FILES):
        (inbox / f"p{i:02}.png").write_bytes(photo(i))
    assert cli(cfg, "sync", timeout=180).returncode == 0
    newest = max(inbox.glob("*.png"), key=lambda p: p.stat().st_mtime_ns)
    head = png_bytes(seed=999)
    newest.write_bytes(head + bytes(FILE // 10 - len(head)))
    r = cli(cfg, "sync", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "waiting for space" not in r.stdout + r.stderr
    status = json.loads(cli(cfg, "status", "--json").stdout)
    assert {f["state"] for f in status["files"]} == {"synced"}
    assert emu.stats()["requests"]["generate"] == FILES + 1  # the new bytes, once
    live = {f["name"] for f in emu.list_files()}
    assert sum(f["sizeBytes"] != str(FILE) for f in emu.list_files()) <= 1
    assert status["store"]["mine"] == emu.stats()["live_bytes"] <= status["store"]["budget"]
    assert len(live) <= STORE // (FILE // 10)


def test_a_renewal_the_plan_drops_gives_its_room_to_the_kept_copies(tmp_path):
    # Ten 50 kB photos in a 526 kB store: less than one photo of headroom, so the plan
    # keeps nine (with room for one renewal). Every copy is due for renewal at once, and
    # the first renewals start before a full store has named its size. The renewal of
    # the copy the plan then drops stops (its copy lapses as planned), so it no longer
    # holds the one copy that can make room: the nine kept are renewed, nothing waits
    # for space, and the next sync renews all nine again.
    files, size = 10, 50 * KB
    with renewing(tmp_path, files, size, int(files * size / 0.95), seed=200) as (e, cfg):
        r = cli(cfg, "sync", timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "waiting for space" not in r.stdout + r.stderr
        before = e.stats()["uploads_finalized"]
        r = cli(cfg, "sync", timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "waiting for space" not in r.stdout + r.stderr
        assert e.stats()["uploads_finalized"] - before == files - 1  # every kept copy
        status = json.loads(cli(cfg, "status", "--json").stdout)
        assert {f["state"] for f in status["files"]} == {"synced"}
        notes = sorted(f["note"] or "" for f in status["files"])
        assert notes == [""] * (files - 1) + ["captioned, copy not kept (storage budget)"]


def test_a_budget_larger_than_the_service_store_is_a_config_error_naming_the_key(
        tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url, daemon={"storage_budget": "25GB"})
    for command in ("sync", "run"):
        r = cli(cfg, command, timeout=60)
        assert r.returncode == 2, r.stdout + r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "daemon.storage_budget: '25GB' is more than the " \
               "service's store holds (20 GiB per project)" in lines[0], r.stderr
    assert emu.stats()["requests"] == {}  # nothing was asked of the service
