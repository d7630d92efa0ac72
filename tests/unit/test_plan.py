"""Pure decisions of the reconciler."""

from __future__ import annotations

import dataclasses
import os
from functools import partial

import pytest

from mediasync.report import status
from mediasync.rules import availability, desired, ownership, states, steps
from mediasync.rules.ownership import RemoteListing
from mediasync.rules.rows import Desired, LocalFacts
from tests.helpers import content_row, output_row

NOW = 1_800_000_000.0
F = LocalFacts(size=10, mtime_ns=int((NOW - 100) * 1e9), inode=7)

WANT = Desired(
    ".caption.md", "Caption it.", "m", desired.prompt_hash("Caption it."), "/x.png.caption.md"
)


output = partial(output_row, WANT)


# -- settle --------------------------------------------------------------------
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


# -- local problems ------------------------------------------------------------
def test_local_problems():
    assert "empty" in steps.local_problem(0)
    assert steps.local_problem(1) is None
    assert steps.local_problem(2 * 1000**3) is None
    assert "too large" in steps.local_problem(2 * 1000**3 + 1)


# -- remote steps --------------------------------------------------------------
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


# -- refresh -------------------------------------------------------------------
def test_refresh_finds_vanished_updates_expiry_and_deletes_only_our_old_orphans():
    sha_a, sha_b = "a" * 64, "b" * 64
    rows = [content_row(sha256=sha_a, remote_name="files/a", expires_at=1.0),
            content_row(sha256=sha_b, remote_name="files/b", expires_at=2.0)]
    remote = [
        RemoteListing("files/a", ownership.display_name(sha_a, "a.png"), NOW - 9999, 5.0),
        RemoteListing("files/orphan", ownership.display_name("c" * 64, "c.png"), NOW - 9999, 9.0),
        RemoteListing("files/young", ownership.display_name("d" * 64, "d.png"), NOW - 5, 9.0),
        RemoteListing("files/busy", ownership.display_name("e" * 64, "e.png"), NOW - 9999, 9.0),
        RemoteListing("files/theirs", "holiday.jpg", NOW - 9999, 9.0),
    ]
    p = ownership.plan_refresh(remote, rows, {"files/a", "files/b"}, {("e" * 64)[:16]}, NOW)
    assert p.vanished == (sha_b,)
    assert p.expiries == ((sha_a, 5.0),)
    assert p.delete == ("files/orphan",)


def test_display_name_round_trip_and_length():
    name = ownership.display_name("f" * 64, "x" * 600)
    assert len(name) == 512
    assert ownership.owner_of(name) == (None, "f" * 16)
    assert ownership.owner_of("someone else's") is None


# -- outputs -------------------------------------------------------------------
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


def test_status_line():
    line = status.status_line(3, {"synced": 1204, "uploading": 2, "processing": 1, "waiting": 4})
    assert line == (
        "watching 3 folders · 1204 synced · 3 uploading · 0 pending · 4 waiting · 0 failed"
    )
    assert status.status_line(1, {}, "key refused").endswith("· key refused")


def test_desired_outputs_carry_the_effective_model_and_sidecar_path():
    from pathlib import Path

    from mediasync.config import FolderConfig, PromptConfig

    folder = FolderConfig(
        path=Path("/m"),
        prompts=(
            PromptConfig(("image",), "Caption it.", ".caption.md"),
            PromptConfig(("image", "video"), "Tags.", ".tags.txt", model="pro"),
            PromptConfig(("audio",), "Transcribe.", ".transcript.txt"),
        ),
    )
    wants = desired.desired(folder, "/m/a b.jpg", "image", "flash")
    assert [(w.suffix, w.model, w.sidecar) for w in wants] == [
        (".caption.md", "flash", "/m/a b.jpg.caption.md"),
        (".tags.txt", "pro", "/m/a b.jpg.tags.txt"),
    ]
    assert not states.is_current(output(model="flash"), dataclasses.replace(WANT, model="pro"), "s")


def test_display_name_carries_the_instance_and_old_names_still_parse():
    sha = "ab" * 32
    name = ownership.display_name(sha, "a:b.png", "1a2b3c4d")
    assert name == f"mediasync:1a2b3c4d:{sha[:16]}:a:b.png"
    assert ownership.owner_of(name) == ("1a2b3c4d", sha[:16])
    assert ownership.owner_of(f"mediasync:{sha[:16]}:x.png") == (None, sha[:16])  # old form
    assert ownership.owner_of("mediasync:nonsense") is None


def test_refresh_deletes_only_this_instances_orphans():
    def orphan(n: str, inst: str | None) -> RemoteListing:
        return RemoteListing(f"files/{n}", ownership.display_name(n * 64, f"{n}.png", inst),
                             NOW - 9999, 9.0)

    listing = [orphan("a", "mine0001"), orphan("b", "other001"), orphan("c", None)]
    p = ownership.plan_refresh(listing, [], set(), set(), NOW, "mine0001")
    assert p.delete == ("files/a",)


def test_a_rebuilding_database_adopts_unknown_copies_of_ours_and_deletes_spares():
    """After a rebuild every copy of ours is unknown: none is a leftover until every
    file was met again; a second copy of content that has one recorded is a spare."""
    def copy(n: str, sha: str | None, inst: str = "mine0001", state: str = "ACTIVE",
             size: int | None = 10) -> RemoteListing:
        return RemoteListing(f"files/{n}", ownership.display_name((sha or "f" * 64), "x.png",
                                                                  inst),
                             NOW - 9999, NOW + 9999, sha, state, f"u/{n}", size)

    known = content_row(sha256="a" * 64, remote_name="files/a0", size=10)
    listing = [copy("a0", "a" * 64), copy("a1", "a" * 64),  # a1: a spare of a
               copy("b", "b" * 64), copy("c", None),  # c: no hash read, the name's sha16
               copy("d", "d" * 64, state="PROCESSING"), copy("e", "e" * 64, inst="other001")]
    p = ownership.plan_refresh(listing, [known], {"files/a0"}, set(), NOW, "mine0001",
                               rebuilding=True)
    assert p.delete == ("files/a1",)
    assert [f.name for f in p.adoptable] == ["files/b", "files/c"]
    assert p.adoptable[1].holds("f" * 64, 10) and not p.adoptable[1].holds("f" * 64, 11)
    done = ownership.plan_refresh(listing, [known], {"files/a0"}, set(), NOW, "mine0001")
    assert done.delete == ("files/a1", "files/b", "files/c", "files/d")  # leftovers again
    assert done.adoptable == ()


def test_names_that_are_not_utf8_are_shown_escaped():
    from mediasync.rules.naming import shown

    name = os.fsdecode(b"caf\xe9.png")
    assert shown(name) == "caf\\xe9.png" and shown("café.png") == "café.png"
    assert ownership.display_name("a" * 64, name).endswith(":caf\\xe9.png")
    shown(name).encode("utf-8")  # sendable as JSON, printable


def test_folder_unavailable_tells_an_unmount_from_deleted_files():
    assert availability.folder_unavailable(None, 1, None) == "does not exist or is not a directory"
    # was its own file system with files, now on the parent's: unmounted
    assert "mount point" in (availability.folder_unavailable(1, 1, 7) or "")
    assert availability.folder_unavailable(7, 1, 7) is None  # mounted
    assert availability.folder_unavailable(9, 1, 7) is None  # another disk mounted there
    assert availability.folder_unavailable(1, 1, 1) is None  # a plain folder: deletions are real
    assert availability.folder_unavailable(1, 1, None) is None  # never seen with files
