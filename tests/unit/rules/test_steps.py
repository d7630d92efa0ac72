"""The next step of a path (rules/steps.py): settle, local problems, the remote copy,
outputs, removal."""

from __future__ import annotations

import dataclasses
from functools import partial

import pytest

from mediasync.rules import desired, steps
from mediasync.rules.rows import Desired, LocalFacts
from tests.helpers import content_row, output_row

NOW = 1_800_000_000.0
F = LocalFacts(size=10, mtime_ns=int((NOW - 100) * 1e9), inode=7)

WANT = Desired(
    ".caption.md", "Caption it.", "m", desired.prompt_hash("Caption it."), "/x.png.caption.md"
)


output = partial(output_row, WANT)


def test_old_untouched_file_is_taken_at_once():
    assert steps.settle_wait(F, None, None, NOW, 50.0, 2.0) == 0


def test_recent_mtime_waits_for_the_rest_of_settle():
    fresh = dataclasses.replace(F, mtime_ns=int((NOW - 0.5) * 1e9))
    assert steps.settle_wait(fresh, None, None, NOW, 50.0, 2.0) == pytest.approx(1.5)


def test_recent_event_waits_even_with_an_old_mtime():
    # cp -p / rsync keep an old mtime while the file is still being written
    assert steps.settle_wait(F, None, 49.0, NOW, 50.0, 2.0) == pytest.approx(1.0)


def test_changed_stat_since_last_look_restarts_settle():
    grown = dataclasses.replace(F, size=20)
    assert steps.settle_wait(grown, F, None, NOW, 50.0, 2.0) == 2.0


def test_future_mtime_waits_one_settle_not_until_then():
    # exFAT stores local time: hours ahead; a camera with a wrong clock: years.
    for ahead in (3 * 3600.0, 5 * 365 * 86400.0):
        future = dataclasses.replace(F, mtime_ns=int((NOW + ahead) * 1e9))
        assert steps.settle_wait(future, None, None, NOW, 50.0, 2.0) == 2.0
        # unchanged across our own wait: still, whatever its mtime says
        assert steps.settle_wait(future, future, None, NOW + 2.0, 52.0, 2.0) == 0
        # the event part of the rule stays
        assert steps.settle_wait(future, future, 51.5, NOW + 2.0, 52.0, 2.0) == pytest.approx(1.5)
        grown = dataclasses.replace(future, size=20)
        assert steps.settle_wait(grown, future, None, NOW + 2.0, 52.0, 2.0) == 2.0


def test_local_problems():
    assert "empty" in steps.local_problem(0)
    assert steps.local_problem(1) is None
    assert steps.local_problem(2 * 1000**3) is None
    assert "too large" in steps.local_problem(2 * 1000**3 + 1)


@pytest.mark.parametrize(
    "row, step",
    [
        (content_row(), "upload"),
        (content_row(next_url="u", next_offset=5), "resume"),
        (content_row(next_name="files/n"), "poll"),
        (content_row(remote_name="files/a", expires_at=NOW + 40 * 3600), "ready"),
        (content_row(remote_name="files/a", expires_at=NOW + 5 * 3600), "renew"),
        (content_row(remote_name="files/a", expires_at=NOW + 60), "upload"),  # too close to use
        (content_row(remote_name="files/a", expires_at=NOW + 40 * 3600, next_url="u"), "renew"),
        (content_row(error="bad", retry_at=None), "failed"),
        (content_row(error="503", retry_at=NOW + 30), "wait"),
        (content_row(error="503", retry_at=NOW - 1), "upload"),
        # A refused renewal never takes the working copy away (issue 8, row 9).
        (content_row(remote_name="files/a", expires_at=NOW + 5 * 3600, error="400"), "renew"),
    ],
)
def test_remote_step(row, step):
    assert steps.remote_step(row, NOW, 6 * 3600) == step


@pytest.mark.parametrize(
    "row, state, step",
    [
        (None, "missing", "generate"),
        (None, "foreign", "keep_edit"),
        (output(), "ours", "skip"),
        (output(), "missing", "generate"),  # deleted by the owner: make it again
        (output(), "edited", "keep_edit"),
        (output(outcome="kept_edit"), "edited", "skip"),
        (output(sha256="old"), "ours", "generate"),
        (output(sha256="old"), "edited", "keep_edit"),
        (output(prompt_hash="old"), "ours", "generate"),
        (output(model="other"), "ours", "generate"),
        # blocked, failed and waiting outputs: in test_states.OUTPUTS with their states.
        # kill -9 mid-rewrite (issue 8, row 1): the old bytes are ours but stale;
        # the pending bytes on disk are current and only need recording.
        (output(outcome="writing", pending_hash="p"), "stale", "generate"),
        (output(outcome="writing", pending_hash="p"), "ours", "confirm"),
        (output(outcome="writing", pending_hash="p"), "missing", "generate"),
        (output(outcome="writing", pending_hash="p"), "edited", "keep_edit"),
    ],
)
def test_output_step(row, state, step):
    assert steps.output_step(row, WANT, "s", state, NOW) == step


def test_removable_waits_for_grace():
    assert steps.removable({"/a": NOW - 10, "/b": NOW - 1}, NOW, 5) == ["/a"]
