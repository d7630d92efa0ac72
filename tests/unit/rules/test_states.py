"""The one decoder: every state of a copy and of an output, and the step out of it."""

from __future__ import annotations

from functools import partial

import pytest

from mediasync.rules import rows, states, steps
from mediasync.rules.states import Copy, Output
from tests.helpers import content_row, output_row

NOW = 1_000_000.0
H = 3600.0
RENEW = 6 * H

LIVE = {"remote_name": "files/a", "uri": "u", "expires_at": NOW + 40 * H}

# (recorded fields, state, the engine's next step): the way out of every state.
COPIES = [
    ({}, Copy.NONE, "upload"),
    ({"next_url": "http://u", "next_offset": 8}, Copy.UPLOADING, "resume"),
    ({"next_name": "files/b"}, Copy.PROCESSING, "poll"),
    (LIVE, Copy.SERVING, "ready"),
    ({**LIVE, "expires_at": NOW + H}, Copy.RENEWING, "renew"),  # in its window
    ({**LIVE, "next_name": "files/b"}, Copy.RENEWING, "renew"),  # a fresh copy under way
    ({**LIVE, "error": "503", "retry_at": None}, Copy.SERVING, "ready"),  # renewal failed
    ({**LIVE, "expires_at": NOW + 60}, Copy.EXPIRED, "upload"),  # too close to expiry
    ({"remote_name": "files/a", "expires_at": None}, Copy.EXPIRED, "upload"),
    ({"error": "503", "retry_at": NOW + 30}, Copy.WAITING, "wait"),
    ({"error": "503", "retry_at": NOW - 1, "next_url": "http://u"}, Copy.UPLOADING, "resume"),
    ({"error": "refused", "retry_at": None}, Copy.FAILED, "failed"),
]


@pytest.mark.parametrize(("fields", "state", "step"), COPIES)
def test_copy_states_and_their_way_out(fields, state, step):
    c = content_row(**fields)
    assert states.copy_state(c, NOW, RENEW) is state
    assert steps.remote_step(c, NOW, RENEW) == step


def test_every_copy_state_is_reachable_and_has_a_step():
    assert {s for _, s, _ in COPIES} == set(Copy)


def test_the_renewal_window_opens_renew_before_ahead_of_the_expiry():
    expires = NOW + 10 * H
    assert states.renew_at(expires, RENEW) == NOW + 4 * H
    # copy_state asks the same rule: renewing from that instant on, serving before it
    c = content_row(**{**LIVE, "expires_at": expires})
    assert states.copy_state(c, NOW + 4 * H - 1, RENEW) is Copy.SERVING
    assert states.copy_state(c, NOW + 4 * H, RENEW) is Copy.RENEWING


WANT = rows.Desired(suffix=".c.md", prompt="p", model="m", prompt_hash="h", sidecar="/f/a.c.md")


row = partial(output_row, WANT)


# (row, sidecar on disk, state, the engine's step)
OUTPUTS = [
    (None, "missing", Output.MISSING, "generate"),
    (row(sha256="other"), "ours", Output.STALE, "generate"),
    (row(model="pro"), "ours", Output.STALE, "generate"),
    (row(outcome="writing", pending_hash="p"), "ours", Output.WRITING, "confirm"),
    (row(outcome="writing", pending_hash="p"), "stale", Output.WRITING, "generate"),
    (row(), "ours", Output.WRITTEN, "skip"),
    (row(), "missing", Output.WRITTEN, "generate"),  # deleted: written again
    (row(), "edited", Output.WRITTEN, "keep_edit"),
    (row(outcome="kept_edit"), "edited", Output.KEPT_EDIT, "skip"),
    (row(outcome="failed", retry_at=NOW + 60), "missing", Output.WAITING, "wait"),
    (row(outcome="failed", retry_at=NOW - 1), "missing", Output.WAITING, "generate"),
    (row(outcome="blocked"), "missing", Output.BLOCKED, "skip"),
    (row(outcome="incomplete"), "missing", Output.INCOMPLETE, "skip"),  # no paid loop
    (row(outcome="failed"), "missing", Output.FAILED, "skip"),
    (row(outcome="from-a-newer-version"), "ours", Output.STALE, "generate"),
]


@pytest.mark.parametrize(("r", "disk", "state", "step"), OUTPUTS)
def test_output_states_and_their_way_out(r, disk, state, step):
    assert states.output_state(r, WANT, "s") is state
    assert steps.output_step(r, WANT, "s", disk, NOW) == step


def test_every_output_state_is_reachable():
    assert {s for _, _, s, _ in OUTPUTS} == set(Output)
