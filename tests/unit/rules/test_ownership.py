"""Our display names and the listing against the database (rules/ownership.py)."""

from __future__ import annotations

import os
from functools import partial

from mediasync.rules import desired, ownership
from mediasync.rules.ownership import RemoteListing
from mediasync.rules.rows import Desired, LocalFacts
from tests.helpers import content_row, output_row

NOW = 1_800_000_000.0
F = LocalFacts(size=10, mtime_ns=int((NOW - 100) * 1e9), inode=7)

WANT = Desired(
    ".caption.md", "Caption it.", "m", desired.prompt_hash("Caption it."), "/x.png.caption.md"
)


output = partial(output_row, WANT)


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
