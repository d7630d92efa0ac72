"""`status` decodes every recorded state, and no unfinished file is without a reason."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mediasync.config import parse_config
from mediasync.report import status
from mediasync.rules import desired
from mediasync.store import Meta, OutputRow, PathRow, Store

NOW = 1_000_000.0
HOUR = 3600.0


@pytest.fixture
def config(tmp_path: Path):
    return parse_config({"folders": [{"path": str(tmp_path / "f")}]}, source=tmp_path / "c.toml")


def _on_use(tmp_path: Path):
    return parse_config({"daemon": {"keep_alive": "on_use"},
                         "folders": [{"path": str(tmp_path / "f")}]}, source=tmp_path / "c.toml")


def _path(folder: Path, name: str, sha: str | None, problem: str | None = None) -> PathRow:
    return PathRow(path=str(folder / name), folder=str(folder), size=10, mtime_ns=1, inode=1,
                   sha256=sha, kind="image", mime="image/png", problem=problem, gone_at=None,
                   updated_at=0.0)


# Every shape a content row takes (see mirror.py): the fields that decide its state.
CONTENT_SHAPES = {
    "none": None,
    "fresh": {},
    "live": {"remote_name": "files/a", "uri": "u", "expires_at": NOW + 40 * HOUR},
    "expiring": {"remote_name": "files/a", "uri": "u", "expires_at": NOW + 60},
    "expired": {"remote_name": "files/a", "uri": "u", "expires_at": NOW - 60},
    "uploading": {"next_url": "http://x/up", "next_offset": 4},
    "processing": {"next_name": "files/b"},
    "renewing": {"remote_name": "files/a", "uri": "u", "expires_at": NOW + HOUR,
                 "next_name": "files/b"},
    "waiting": {"error": "upload failed, will retry: 503", "retry_at": NOW + 30},
    "waiting_over": {"error": "upload failed, will retry: 503", "retry_at": NOW - 30},
    "failed": {"error": "the service refused the file: bad", "retry_at": None},
}
OUTCOMES = [None, "written", "kept_edit", "writing", "blocked", "failed", "failed_retry", "stale"]


def _store_with(tmp_path: Path, config, shape: str, outcome: str | None, halted: bool) -> Store:
    folder = config.folders[0].path
    store = Store(tmp_path / f"{shape}-{outcome}-{halted}.db")
    row = _path(folder, "a.png", "s1")
    store.put_path(row)
    fields = CONTENT_SHAPES[shape]
    if fields is not None:
        store.ensure_content("s1", 10, "image/png", "image", NOW)
        store.update_content("s1", NOW, **fields)
    if outcome is not None:
        (want,) = desired.desired(config.folders[0], row.path, "image", config.api.model)
        store.put_output(OutputRow(
            path=row.path, suffix=want.suffix, sha256="s1",
            prompt_hash="old" if outcome == "stale" else want.prompt_hash, model=want.model,
            sidecar=want.sidecar, written_hash="h", pending_hash=None,
            outcome="failed" if outcome == "failed_retry" else
            ("written" if outcome == "stale" else outcome),
            message="503 UNAVAILABLE: overloaded" if outcome.startswith("failed") else None,
            prompt_tokens=5, output_tokens=3, thoughts_tokens=7,
            retry_at=NOW + 60 if outcome == "failed_retry" else None, attempts=1, at=NOW,
        ))
    return store


@pytest.mark.parametrize("keep_alive", ["always", "on_use"])
@pytest.mark.parametrize("halted", [False, True])
def test_every_unfinished_file_says_why(tmp_path, config, halted, keep_alive):
    """Fails if any combination of recorded facts decodes to a state with no reason."""
    if keep_alive == "on_use":
        config = _on_use(tmp_path)
    seen = set()
    for shape, outcome in itertools.product(CONTENT_SHAPES, OUTCOMES):
        store = _store_with(tmp_path, config, shape, outcome, halted)
        if halted:
            store.write(Meta.HALTED, "the API key was refused")
        (r,) = status.build(store, config, NOW)
        seen.add(r.state)
        if r.state != "synced":
            assert r.message, (shape, outcome, r)
        if halted and r.state not in ("synced", "failed"):
            assert "API key was refused" in r.message
        for s in r.sidecars:
            if s.outcome not in ("written", "kept_edit"):
                assert s.message, (shape, outcome, s)
        store.close()
    assert {"synced", "pending", "uploading", "processing", "waiting", "failed"} <= seen


def test_synced_only_with_a_serving_copy_and_current_sidecars(tmp_path, config):
    store = _store_with(tmp_path, config, "live", "written", False)
    (r,) = status.build(store, config, NOW)
    assert r.state == "synced" and r.message is None
    store = _store_with(tmp_path, config, "expired", "written", False)
    (r,) = status.build(store, config, NOW)
    assert r.state == "pending" and "expired" in r.message


def test_on_use_a_lapsed_copy_with_current_sidecars_is_synced(tmp_path):
    """keep_alive = "on_use": no copy is needed once the sidecars are written, but a
    sidecar still to write waits for its copy, and a blocked one says so."""
    config = _on_use(tmp_path)
    for shape in ("expired", "none", "waiting"):
        (r,) = status.build(_store_with(tmp_path, config, shape, "written", False), config, NOW)
        assert r.state == "synced" and r.message is None and "on_use" in r.note, shape
    (r,) = status.build(_store_with(tmp_path, config, "expired", None, False), config, NOW)
    assert r.state == "pending" and "not generated yet" in r.message
    (r,) = status.build(_store_with(tmp_path, config, "expired", "blocked", False), config, NOW)
    assert r.state == "failed" and "blocked" in r.message
    (r,) = status.build(_store_with(tmp_path, config, "failed", "written", False), config, NOW)
    assert r.state == "failed"


def test_waiting_is_waiting_everywhere_with_the_next_try(tmp_path, config):
    """The STATUS line and `status` read one decoder: a retry is never counted as failed."""
    store = _store_with(tmp_path, config, "live", "failed_retry", False)
    reports = status.build(store, config, NOW)
    (r,) = reports
    assert r.state == "waiting" and r.next_try == NOW + 60
    assert "next try" in r.message and "overloaded" in r.message
    line = status.status_line(1, status.counts(reports))
    assert "1 waiting" in line and "0 failed" in line


def test_thought_tokens_are_counted_apart(tmp_path, config):
    store = _store_with(tmp_path, config, "live", "written", False)
    reports = status.build(store, config, NOW)
    assert status.token_totals(reports) == {"prompt": 5, "output": 3, "thoughts": 7}
    text = status.render_text(reports, config, NOW)
    assert "15 tokens used (5 prompt, 3 output, 7 thoughts)" in text
    assert status.render_json(reports)["tokens"]["thoughts"] == 7


def test_a_local_problem_is_a_failure_with_its_reason(tmp_path, config):
    store = Store(tmp_path / "p.db")
    store.put_path(_path(config.folders[0].path, "e.png", None, "empty file (0 bytes)"))
    (r,) = status.build(store, config, NOW)
    assert r.state == "failed" and r.message == "empty file (0 bytes)"


def test_an_unreadable_file_waits_it_does_not_fail(tmp_path, config):
    """A permission or an I/O error can change without the file changing: transient."""
    store = Store(tmp_path / "r.db")
    store.put_path(_path(config.folders[0].path, "p.png", None,
                         "cannot read it: Permission denied"))
    (r,) = status.build(store, config, NOW)
    assert r.state == "waiting" and "Permission denied" in r.message


def test_the_per_file_shortcuts_say_what_the_library_calls_say():
    """`status` over 100,000 files: relative names, minute stamps and JSON dicts made
    without the general calls, with the same results."""
    import dataclasses
    import os

    from mediasync.rules import naming
    from mediasync.rules.units import minute_stamp, utc_stamp

    for path, folder in [("/f/a.png", "/f"), ("/f/d/a.png", "/f"), ("/f/a.png", "/f/"),
                         ("/f//a.png", "/f"), ("/f/./a.png", "/f"), ("/f/../g/a.png", "/f"),
                         ("/g/a.png", "/f"), ("/fa/b.png", "/f"), ("/x.png", "/"),
                         ("/f/d/../a.png", "/f"), ("/f", "/f"), ("/f/a/", "/f"),
                         ("/f/.a.png", "/f"), ("/f/d/.x/a.png", "/f"), ("/f/a./b.png", "/f"),
                         ("/f/d/..", "/f"), ("/f/d/.", "/f"), ("/f/a.png/", "/f")]:
        assert naming.relative(path, folder) == os.path.relpath(path, folder), path
    for ts in [0.0, 59.999, 60.0, 1_700_000_000.5, 1_700_000_039.0, -61.0, 4_102_444_799.9,
               9.2e18, float("inf"), float("nan")]:
        assert minute_stamp(ts) == utc_stamp(ts), ts
    r = status.FileReport("/f/a.png", "/f", "waiting", "why", "files/x", 5.0, None, "n", 9.0,
                          [status.SidecarReport("a.png.c.md", "written", None, 3, 1, 1, 1)])
    assert status.as_json_dict(r) == dataclasses.asdict(r)
    assert list(status.as_json_dict(r)) == list(dataclasses.asdict(r))


def test_a_time_past_what_datetime_holds_is_shown_not_raised():
    # wire/03's 9223372036854775807 s once reached status as a retry time: OverflowError
    # in the health job every 5 s. Any float now reads as a date.
    from mediasync.rules.units import utc_stamp

    assert utc_stamp(1.8e9 + 9223372036854775807) == "9999-12-31 23:59 UTC"
    assert utc_stamp(float("inf")) == "9999-12-31 23:59 UTC"
    assert utc_stamp(float("nan")) == utc_stamp(-5.0) == "1970-01-01 00:00 UTC"
    assert utc_stamp(1_800_000_000) == "2027-01-15 08:00 UTC"


# -- prices (issue 16) ----------------------------------------------------------------
def test_an_unknown_model_is_price_unknown_never_another_models_price() -> None:
    from mediasync.config import DEFAULT_PRICES
    from mediasync.report import costs

    assert costs.price_of(DEFAULT_PRICES, "gemini-2.5-flash-preview-05-20") == \
        DEFAULT_PRICES["gemini-2.5-flash"]  # a dated name costs as its family
    assert costs.price_of(DEFAULT_PRICES, "models/gemini-3.5-flash-lite-001") == \
        DEFAULT_PRICES["gemini-3.5-flash-lite"]
    for model in ("gemini-3.5-flash-image", "gemini-3.6-flash", "gemini-9-ultra",
                  "gemini-3.8-flash-lite"):
        assert costs.price_of(DEFAULT_PRICES, model) is None, model
    rows = [("2026-12-01", "gemini-3.6-flash", 1, 1000, 10, 0, "standard")]
    spend = costs.summary(rows, DEFAULT_PRICES, 0.0)["gemini-3.6-flash"]["total"]
    assert spend.tokens == 1010 and spend.cost is None
    assert "price unknown" in costs.render({"gemini-3.6-flash": {
        "today": spend, "month": spend, "total": spend}})[0]


def test_each_row_costs_its_days_price_at_its_tier() -> None:
    from mediasync.config import DEFAULT_PRICES
    from mediasync.report import costs

    m = "gemini-3.8-flash"
    rows = [("2026-12-31", m, 1, 1_000_000, 0, 1_000_000, "standard"),  # 0.75 + 3.75
            ("2027-01-01", m, 1, 1_000_000, 0, 0, "standard"),  # the new price: 1.50
            ("2027-01-01", m, 1, 1_000_000, 0, 0, "flex"),  # half: 0.75
            ("2027-01-01", m, 1, 1_000_000, 0, 0, "priority")]  # up to twice: 3.00
    total = costs.summary(rows, DEFAULT_PRICES, 0.0)[m]["total"]
    assert total.cost == pytest.approx(4.50 + 1.50 + 0.75 + 3.00)
    assert total.requests == 4


def test_status_line():
    line = status.status_line(3, {"synced": 1204, "uploading": 2, "processing": 1, "waiting": 4})
    assert line == (
        "watching 3 folders · 1204 synced · 3 uploading · 0 pending · 4 waiting · 0 failed"
    )
    assert status.status_line(1, {}, "key refused").endswith("· key refused")
