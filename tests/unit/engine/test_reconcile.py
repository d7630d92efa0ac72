"""Reconciler: one path, one step — settle, identify, the remote copy, each output —
taken in that order, each only when the one before allows it. The parts it calls
are records here; the file system and store are real."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path, PurePath
from typing import Any

import pytest

from mediasync.config import FolderConfig
from mediasync.engine.context import UNAVAILABLE_RETRY, Context
from mediasync.engine.halt import Halt
from mediasync.engine.reconcile import Ready, Reconciler
from mediasync.gemini import ApiError
from mediasync.local.scan import local_facts
from mediasync.rules import desired
from mediasync.rules.failures import ContentUnavailable
from mediasync.rules.rows import ContentRow, Desired, LocalFacts, PathRow
from tests.helpers import content_row
from tests.unit.engine.conftest import MONO, SETTLE, WALL, Queue, hung_folder, make_context

SHA = "ab" * 32


class Parts:
    """The parts a Reconciler calls, as records of (step, path-or-sha, ...) in order."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.calls: list[tuple[Any, ...]] = []
        self.stats: dict[str, LocalFacts] = {}  # what the last scan took
        self.wait = 0.0  # what settling says
        self.row: dict[str, Any] = {}  # fields of the row identify returns (None: none)
        self.copy_error: Exception | None = None
        self.ask_ready = 0  # times each output calls ``ready``
        self.beyond: set[str] = set()  # contents the storage budget does not keep
        self.use: list[tuple[str, str]] = []  # ("in"|"out", sha) of Mirror.using
        self.replans = 0

    def take_stat(self, path: str) -> LocalFacts | None:
        return self.stats.pop(path, None)

    def settle_wait(self, path: str, facts: LocalFacts, now: float, settle: float) -> float:
        self.calls.append(("settle", path, facts, now, settle))
        return self.wait

    async def identify(self, path: str, folder: FolderConfig, rel: PurePath, kind: str,
                       mime: str, facts: LocalFacts) -> PathRow | None:
        self.calls.append(("identify", path, rel, kind, facts))
        if self.row.get("none"):
            return None
        base = dict(path=path, folder=str(folder.path), size=facts.size,
                    mtime_ns=facts.mtime_ns, inode=facts.inode, sha256=SHA, kind=kind,
                    mime=mime, problem=None, gone_at=None, updated_at=WALL)
        return PathRow(**{**base, **self.row})

    async def gone(self, path: str, folder: FolderConfig | None) -> None:
        self.calls.append(("gone", path, folder is not None))

    async def ensure_copy(self, sha: str) -> ContentRow:
        self.calls.append(("copy", sha))
        if self.copy_error is not None:
            raise self.copy_error
        return content_row(sha256=sha, remote_name="files/x", uri="u")

    async def output(self, path: str, rel: PurePath, sha: str, want: Desired,
                     ready: Ready | None) -> None:
        self.calls.append(("output", path, want.suffix, ready is not None))
        for _ in range(self.ask_ready):
            assert ready is not None
            await ready()

    def keeps(self, path: str, sha: str) -> bool:
        return self.ctx.config.keeps_alive(Path(path)) and sha not in self.beyond

    @contextlib.asynccontextmanager
    async def using(self, sha: str):
        self.use.append(("in", sha))
        self.calls.append(("using", sha))
        try:
            yield
        finally:
            self.use.append(("out", sha))

    def replan(self) -> None:
        self.replans += 1

    def skip(self, path: str, folder: object, kind: str, mime: str, facts: object,
             why: str) -> None:
        self.calls.append(("skip", path, why))

    def reconciler(self, queue: Queue, halt: Halt) -> Reconciler:
        return Reconciler(self.ctx, queue, halt, take_stat=self.take_stat,
                          settle_wait=self.settle_wait, identify=self.identify, gone=self.gone,
                          skip=self.skip, ensure_copy=self.ensure_copy, output=self.output,
                          keeps=self.keeps, using=self.using, replan=self.replan)

    def steps(self) -> list[str]:
        return [c[0] for c in self.calls if c[0] != "using"]


@pytest.fixture
def parts(ctx: Context) -> Parts:
    return Parts(ctx)


@pytest.fixture
def halt(ctx: Context) -> Halt:
    return Halt(ctx.store)


def reconcile(parts: Parts, queue: Queue, halt: Halt, path: Path | str) -> None:
    asyncio.run(parts.reconciler(queue, halt).reconcile(str(path)))


def photo(tmp_path: Path, name: str = "a.png") -> Path:
    p = tmp_path / "inbox" / name
    p.write_bytes(b"a photo")
    return p


# -- what is not for it, or not there ---------------------------------------------------
def test_a_path_outside_every_folder_is_gone(parts, queue, halt, tmp_path) -> None:
    reconcile(parts, queue, halt, tmp_path / "elsewhere" / "a.png")
    assert parts.calls == [("gone", str(tmp_path / "elsewhere" / "a.png"), False)]


@pytest.mark.parametrize("name", ["a.png.caption.md", "notes.txt", ".hidden.png"])
def test_a_sidecar_or_what_is_no_media_counts_as_gone(parts, queue, halt, tmp_path,
                                                     name) -> None:
    path = photo(tmp_path, name)
    reconcile(parts, queue, halt, path)
    assert parts.calls == [("gone", str(path), True)]


def test_a_missing_file_is_gone(parts, queue, halt, tmp_path) -> None:
    reconcile(parts, queue, halt, tmp_path / "inbox" / "a.png")
    assert parts.calls == [("gone", str(tmp_path / "inbox" / "a.png"), True)]


def test_a_directory_named_like_media_is_said_once_and_gone(parts, queue, halt,
                                                            tmp_path) -> None:
    path = tmp_path / "inbox" / "d.png"
    path.mkdir()
    reconcile(parts, queue, halt, path)
    assert queue.asked == [("note", str(path), "notregular")]
    assert parts.calls == [("gone", str(path), True)]


def test_a_folder_that_does_not_answer_is_looked_at_again_later(queue, tmp_path) -> None:
    with hung_folder(tmp_path) as ctx:
        parts = Parts(ctx)
        path = photo(tmp_path)
        reconcile(parts, queue, Halt(ctx.store), path)
        assert queue.asked == [("later", str(path), WALL + UNAVAILABLE_RETRY)]
        assert parts.calls == []


# -- settle, identify ---------------------------------------------------------------
def test_a_file_still_changing_is_looked_at_again_once_it_may_be_still(parts, queue, halt,
                                                                       tmp_path) -> None:
    path = photo(tmp_path)
    parts.wait = 1.5
    reconcile(parts, queue, halt, path)
    assert parts.calls == [("settle", str(path), local_facts(str(path)), WALL, SETTLE)]
    assert queue.asked == [("schedule", str(path), MONO + 1.5)]


def test_the_scans_stat_is_taken_instead_of_a_new_one(parts, queue, halt, tmp_path) -> None:
    path = tmp_path / "inbox" / "a.png"  # not on disk: only the scan's stat says it is
    scanned = LocalFacts(size=3, mtime_ns=1, inode=2)
    parts.stats[str(path)] = scanned
    reconcile(parts, queue, halt, path)
    assert parts.calls[1] == ("identify", str(path), PurePath("a.png"), "image", scanned)
    assert parts.stats == {}  # taken once


def test_a_settled_file_gets_its_copy_then_each_output(
        parts, queue, halt, ctx, tmp_path) -> None:
    path = photo(tmp_path)
    reconcile(parts, queue, halt, path)
    wants = desired.desired(ctx.config.folders[0], str(path), "image", ctx.config.api.model)
    assert wants
    assert parts.steps() == ["settle", "identify", "copy", *["output"] * len(wants)]
    assert [c[2] for c in parts.calls if c[0] == "output"] == [w.suffix for w in wants]
    assert all(not c[3] for c in parts.calls if c[0] == "output")  # no ``ready``: made
    content = ctx.store.get_content(SHA)  # the content is recorded before its copy
    assert content is not None and (content.size, content.mime) == (7, "image/png")
    assert queue.asked == []


@pytest.mark.parametrize("row", [{"none": True}, {"sha256": None},
                                 {"sha256": None, "problem": "empty file"}])
def test_a_file_without_a_content_hash_goes_no_further(parts, queue, halt, tmp_path,
                                                       row) -> None:
    parts.row = row
    reconcile(parts, queue, halt, photo(tmp_path))
    assert parts.steps() == ["settle", "identify"]


def test_nothing_is_asked_of_the_service_while_the_key_is_refused(parts, queue, halt,
                                                                  tmp_path) -> None:
    halt.set("the API key was refused")
    reconcile(parts, queue, halt, photo(tmp_path))
    assert parts.steps() == ["settle", "identify"]


# -- the remote copy ---------------------------------------------------------------------
def test_a_copy_not_ready_is_looked_at_again_when_it_says(parts, queue, halt,
                                                         tmp_path) -> None:
    path = photo(tmp_path)
    parts.copy_error = ContentUnavailable("uploading elsewhere", WALL + 30)
    reconcile(parts, queue, halt, path)
    assert parts.steps() == ["settle", "identify", "copy"]
    assert queue.asked == [("later", str(path), WALL + 30)]


def test_a_copy_whose_file_changed_is_identified_again_once_settled(parts, queue, halt,
                                                                    tmp_path) -> None:
    path = photo(tmp_path)
    parts.copy_error = ContentUnavailable("changed", None, changed=True)
    reconcile(parts, queue, halt, path)
    assert queue.asked == [("schedule", str(path), MONO + SETTLE)]


def test_a_refused_key_while_copying_halts_every_call(parts, queue, halt, ctx,
                                                      tmp_path) -> None:
    parts.copy_error = ApiError(403, "PERMISSION_DENIED", "key refused")
    reconcile(parts, queue, halt, photo(tmp_path))
    assert parts.steps() == ["settle", "identify", "copy"]
    assert halt.why is not None and "refused" in halt.why


def test_on_use_the_copy_is_made_only_when_an_output_asks_and_once_a_pass(
        queue, tmp_path) -> None:
    ctx, client = make_context(tmp_path, keep_alive="on_use", prompts=[
        {"kinds": ["image"], "prompt": "Caption.", "sidecar": ".caption.md"},
        {"kinds": ["image"], "prompt": "Tags.", "sidecar": ".tags.txt"}])
    try:
        parts = Parts(ctx)
        path = photo(tmp_path)
        reconcile(parts, queue, Halt(ctx.store), path)
        assert parts.steps() == ["settle", "identify", "output", "output"]
        assert all(c[3] for c in parts.calls if c[0] == "output")  # each may ask
        parts.calls.clear()
        parts.ask_ready = 2
        parts.copy_error = ContentUnavailable("not yet", WALL + 30)
        reconcile(parts, queue, Halt(ctx.store), path)
        assert parts.steps() == ["settle", "identify", "output", "copy", "output"]
        assert queue.asked == [("later", str(path), WALL + 30)]  # said once, not per output
    finally:
        asyncio.run(client.aclose())
        ctx.store.close()


def test_beyond_the_storage_budget_the_copy_is_made_only_for_a_generation_and_held_in_use(
        parts, queue, halt, tmp_path) -> None:
    # A content the budget does not keep alive goes as under keep_alive = "on_use":
    # no upload before the outputs; and the pass holds it in use from the copy to the
    # last output, so no other upload deletes it to make room meanwhile.
    path = photo(tmp_path)
    parts.beyond.add(SHA)
    parts.ask_ready = 1
    reconcile(parts, queue, halt, path)
    assert parts.steps() == ["settle", "identify", "output", "copy"]
    assert parts.calls[2] == ("using", SHA)  # before the copy…
    assert parts.use == [("in", SHA), ("out", SHA)]  # …and let go after the outputs
    parts.calls.clear()
    parts.beyond.clear()  # kept: uploaded first, as under keep_alive = "always"
    parts.ask_ready = 0
    reconcile(parts, queue, halt, path)
    assert parts.steps() == ["settle", "identify", "copy", "output"]
