"""Identifier: a path's content hash (read only when its stat changed), renames
recognised so sidecars move along, and paths that are gone, but never on a folder
that is away. Real files and store; the queue and the sibling parts are records."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from pathlib import Path, PurePath

import pytest

from mediasync.config import FolderConfig
from mediasync.engine.context import UNAVAILABLE_RETRY, Context
from mediasync.engine.identify import UNREADABLE_RETRY, Identifier
from mediasync.local.scan import local_facts
from mediasync.rules import steps
from mediasync.rules.rows import LocalFacts, PathRow
from tests.helpers import output_row
from tests.unit.engine.conftest import MONO, SETTLE, WALL, Queue, hung_folder

GRACE = 7.0


class Parts:
    """The siblings an Identifier is given, as records; ``away_with`` is what the
    folders say about a missing path (None: the folder answers, nothing is away)."""

    def __init__(self) -> None:
        self.away_with: str | None = None
        self.away_asked: list[str] = []
        self.settle_forgotten: list[str] = []

    async def away(self, path: str, folder: FolderConfig) -> str | None:
        self.away_asked.append(path)
        return self.away_with

    def identifier(self, ctx: Context, queue: Queue) -> Identifier:
        return Identifier(ctx, queue, away=self.away, forget_settle=self.settle_forgotten.append,
                          sweep_grace=lambda: GRACE)


@pytest.fixture
def parts() -> Parts:
    return Parts()


def identify(ident: Identifier, ctx: Context, path: Path,
             facts: LocalFacts | None = None) -> PathRow | None:
    folder = ctx.config.folders[0]
    rel = PurePath(os.path.relpath(path, folder.path))
    return asyncio.run(ident.identify(str(path), folder, rel, "image", "image/png",
                                      facts or local_facts(str(path))))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_new_file_is_hashed_and_recorded(ctx, queue, parts, tmp_path) -> None:
    photo = tmp_path / "inbox" / "a.png"
    photo.write_bytes(b"first")
    row = identify(parts.identifier(ctx, queue), ctx, photo)
    assert row is not None and row.sha256 == sha(b"first") and row.problem is None
    assert ctx.store.get_path(str(photo)) == row
    assert (row.folder, row.kind, row.mime, row.updated_at) == (
        str(tmp_path / "inbox"), "image", "image/png", WALL)
    assert queue.asked == []


def test_an_unchanged_stat_is_not_read_again(ctx, queue, parts, tmp_path) -> None:
    ident = parts.identifier(ctx, queue)
    photo = _recorded(ident, ctx, tmp_path)
    _rewrite_keeping_stat(photo, b"FIRST")
    ctx.clock.now += 60  # type: ignore[attr-defined]
    row = identify(ident, ctx, photo)
    assert row is not None and row.sha256 == sha(b"first")
    assert row.updated_at == WALL  # the recorded row, as it was


def _recorded(ident: Identifier, ctx: Context, tmp_path: Path) -> Path:
    """inbox/a.png holding b"first", identified once."""
    photo = tmp_path / "inbox" / "a.png"
    photo.write_bytes(b"first")
    identify(ident, ctx, photo)
    return photo


def _rewrite_keeping_stat(path: Path, data: bytes) -> None:
    """New bytes of the same size in place, the mtime put back: the same stat."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_new_bytes_are_hashed_and_the_old_content_swept_soon(ctx, queue, parts,
                                                            tmp_path) -> None:
    ident = parts.identifier(ctx, queue)
    photo = _recorded(ident, ctx, tmp_path)
    photo.write_bytes(b"second version")
    row = identify(ident, ctx, photo)
    assert row is not None and row.sha256 == sha(b"second version")
    assert queue.asked == [("sweep_soon", 0.0)]


def test_an_empty_file_is_a_problem_recorded_without_reading(ctx, queue, parts,
                                                            tmp_path) -> None:
    photo = tmp_path / "inbox" / "a.png"
    photo.write_bytes(b"")
    row = identify(parts.identifier(ctx, queue), ctx, photo)
    assert row is not None and row.sha256 is None
    assert row.problem == steps.local_problem(0)


def _stat_then(tmp_path: Path, change: Callable[[Path], object]) -> tuple[Path, LocalFacts]:
    """A file's stat, and the file changed by ``change`` after it (before the read)."""
    photo = tmp_path / "inbox" / "a.png"
    photo.write_bytes(b"first")
    facts = local_facts(str(photo))
    change(photo)
    return photo, facts


def test_a_file_written_while_hashed_is_looked_at_again_once_settled(ctx, queue, parts,
                                                                    tmp_path) -> None:
    photo, facts = _stat_then(tmp_path, lambda p: p.write_bytes(b"first, and more"))
    assert identify(parts.identifier(ctx, queue), ctx, photo, facts) is None
    assert queue.asked == [("schedule", str(photo), MONO + SETTLE)]
    assert ctx.store.get_path(str(photo)) is None


def test_a_fifo_in_place_of_the_file_is_said_once_not_recorded(ctx, queue, parts,
                                                                tmp_path) -> None:
    photo, facts = _stat_then(tmp_path, lambda p: (p.unlink(), os.mkfifo(p)))
    assert identify(parts.identifier(ctx, queue), ctx, photo, facts) is None
    assert queue.asked == [("note", str(photo), "notregular")]
    assert ctx.store.get_path(str(photo)) is None


def test_a_file_that_cannot_be_read_is_a_problem_tried_again_later(ctx, queue, parts,
                                                                  tmp_path) -> None:
    """Permissions and I/O errors are no verdict on the bytes: recorded, looked at again."""
    # Reading a directory fails with an OSError (EISDIR), even for root.
    photo, facts = _stat_then(tmp_path, lambda p: (p.unlink(), p.mkdir()))
    row = identify(parts.identifier(ctx, queue), ctx, photo, facts)
    assert row is not None and row.sha256 is None
    assert row.problem is not None and row.problem.startswith(steps.READ_PROBLEM)
    assert queue.asked == [("later", str(photo), WALL + UNREADABLE_RETRY)]


def test_a_folder_that_does_not_answer_is_asked_again_later(tmp_path, queue, parts) -> None:
    with hung_folder(tmp_path) as ctx:
        photo = tmp_path / "inbox" / "a.png"
        photo.write_bytes(b"first")
        assert identify(parts.identifier(ctx, queue), ctx, photo) is None
        assert queue.asked == [("later", str(photo), WALL + UNAVAILABLE_RETRY)]
        assert ctx.store.get_path(str(photo)) is None


# -- renames and copies ------------------------------------------------------------
def _captioned(ident: Identifier, ctx: Context, tmp_path: Path) -> tuple[Path, Path, Path]:
    """inbox/a.png identified, with a written caption recorded for it: (a.png, its
    caption, inbox/b.png: a name not taken yet)."""
    from mediasync.rules import desired

    old = _recorded(ident, ctx, tmp_path)
    row = ctx.store.get_path(str(old))
    assert row is not None and row.sha256
    [want] = desired.desired(ctx.config.folders[0], str(old), "image", "m")
    side = Path(want.sidecar)
    side.write_text("a caption\n")
    ctx.store.put_output(output_row(want, path=str(old), sha256=row.sha256))
    return old, side, tmp_path / "inbox" / "b.png"


def test_a_renamed_file_takes_its_sidecars_along(ctx, queue, parts, tmp_path) -> None:
    ident = parts.identifier(ctx, queue)
    old, side, new = _captioned(ident, ctx, tmp_path)
    old.rename(new)
    row = identify(ident, ctx, new)
    assert row is not None and row.sha256 == sha(b"first")
    moved = tmp_path / "inbox" / "b.png.caption.md"
    assert moved.read_text() == "a caption\n" and not side.exists()
    assert [o.sidecar for o in ctx.store.get_outputs(str(new)).values()] == [str(moved)]
    assert ctx.store.get_path(str(old)) is None


def test_a_rename_is_recognised_by_its_stat_without_reading_it(ctx, queue, parts,
                                                                tmp_path) -> None:
    ident = parts.identifier(ctx, queue)
    old, new = _recorded(ident, ctx, tmp_path), tmp_path / "inbox" / "b.png"
    _rewrite_keeping_stat(old, b"FIRST")
    old.rename(new)
    row = identify(ident, ctx, new)
    assert row is not None and row.sha256 == sha(b"first")  # the twin's, not re-read


def test_a_copy_leaves_the_originals_sidecars_where_they_are(ctx, queue, parts,
                                                             tmp_path) -> None:
    ident = parts.identifier(ctx, queue)
    old, side, copy = _captioned(ident, ctx, tmp_path)
    copy.write_bytes(b"first")
    row = identify(ident, ctx, copy)
    assert row is not None and row.sha256 == sha(b"first")
    assert side.exists() and not (tmp_path / "inbox" / "b.png.caption.md").exists()
    assert ctx.store.get_outputs(str(copy)) == {}
    assert ctx.store.get_path(str(old)) is not None


def test_a_path_whose_file_is_only_away_is_no_rename_source(ctx, queue, parts,
                                                            tmp_path) -> None:
    """Gone from sight on a folder that is away counts as still there."""
    ident = parts.identifier(ctx, queue)
    old, side, new = _captioned(ident, ctx, tmp_path)
    new.write_bytes(b"first")
    old.unlink()
    parts.away_with = str(tmp_path / "inbox")
    identify(ident, ctx, new)
    assert side.exists() and ctx.store.get_outputs(str(new)) == {}


# -- gone ------------------------------------------------------------------------------
def test_a_missing_file_is_marked_gone_and_swept_after_the_grace(ctx, queue, parts,
                                                                 tmp_path) -> None:
    ident = parts.identifier(ctx, queue)
    photo = _recorded(ident, ctx, tmp_path)
    photo.unlink()
    asyncio.run(ident.gone(str(photo), ctx.config.folders[0]))
    row = ctx.store.get_path(str(photo))
    assert row is not None and row.gone_at == WALL
    assert parts.settle_forgotten == [str(photo)]
    assert queue.asked == [("sweep_soon", GRACE)]


def test_a_missing_file_in_a_folder_that_is_away_is_not_gone(ctx, queue, parts,
                                                             tmp_path) -> None:
    ident = parts.identifier(ctx, queue)
    photo = _recorded(ident, ctx, tmp_path)
    parts.away_with = str(tmp_path / "inbox")
    asyncio.run(ident.gone(str(photo), ctx.config.folders[0]))
    row = ctx.store.get_path(str(photo))
    assert row is not None and row.gone_at is None
    assert queue.asked == []


def test_a_path_never_recorded_or_already_gone_asks_for_nothing(ctx, queue, parts,
                                                                tmp_path) -> None:
    ident = parts.identifier(ctx, queue)
    asyncio.run(ident.gone(str(tmp_path / "inbox" / "never.png"), ctx.config.folders[0]))
    photo = _recorded(ident, ctx, tmp_path)
    ctx.store.mark_gone(str(photo), WALL - 5)
    asyncio.run(ident.gone(str(photo), ctx.config.folders[0]))
    assert queue.asked == [] and parts.away_asked == []
    assert ctx.store.get_path(str(photo)).gone_at == WALL - 5


def test_exists_counts_a_folder_that_is_away_as_holding_the_path(ctx, queue, parts,
                                                                 tmp_path) -> None:
    ident = parts.identifier(ctx, queue)
    inbox = str(tmp_path / "inbox")
    there, missing = tmp_path / "inbox" / "a.png", str(tmp_path / "inbox" / "b.png")
    there.write_bytes(b"x")
    assert asyncio.run(ident.exists(inbox, str(there)))
    assert not asyncio.run(ident.exists(inbox, missing))
    parts.away_with = inbox
    assert asyncio.run(ident.exists(inbox, missing))
