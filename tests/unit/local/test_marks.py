"""Sidecar ownership recorded with the sidecar itself (local/marks.py): an extended
attribute set before the rename, or a marks file where the file system has none."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from mediasync.local import marks, sidecar
from mediasync.local.sidecar import move_sidecar, text_hash, write_atomic

MARK = marks.Mark("", "c" * 64, "prompt16chars000", "gemini-2.5-flash", "photo.jpg")


@pytest.fixture
def no_xattrs(monkeypatch):
    """A file system without user extended attributes (vfat, SMB, old tmpfs)."""

    def refuse(*_a, **_k):
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", refuse)
    monkeypatch.setattr(os, "getxattr", refuse)


def test_the_mark_is_set_on_the_temp_file_before_the_rename(tmp_path, monkeypatch):
    target = tmp_path / "photo.jpg.caption.md"
    seen: list[marks.Mark | None] = []
    real_link = os.link

    def link(src, dst, *a, **k):
        seen.append(marks.read(Path(src)))  # the temp file, about to become the sidecar
        return real_link(src, dst, *a, **k)

    monkeypatch.setattr(os, "link", link)
    written = write_atomic(target, "a caption", expected=None, mark=MARK)
    assert seen and seen[0] is not None and seen[0].sha256 == written
    assert marks.ours(target) == marks.with_hash(MARK, written)


def test_an_edit_or_a_copy_is_the_owners(tmp_path):
    target = tmp_path / "photo.jpg.caption.md"
    write_atomic(target, "a caption", expected=None, mark=MARK)
    copy = tmp_path / "copy.caption.md"
    shutil.copyfile(target, copy)  # cp: no extended attributes
    assert marks.ours(copy) is None
    with open(target, "a") as f:  # edited in place: the attribute stays, the hash differs
        f.write("my words\n")
    assert marks.read(target) is not None and marks.ours(target) is None


def test_a_mark_follows_its_sidecar_when_moved(tmp_path):
    old, new = tmp_path / "a.jpg.caption.md", tmp_path / "b.jpg.caption.md"
    write_atomic(old, "a caption", expected=None, mark=MARK)
    assert move_sidecar(old, new)
    assert marks.ours(new) is not None


def test_without_extended_attributes_the_marks_file_holds_them(tmp_path, no_xattrs):
    target = tmp_path / "photo.jpg.caption.md"
    written = write_atomic(target, "a caption", expected=None, mark=MARK)
    assert (tmp_path / marks.MARKS_FILE).exists()
    assert marks.ours(target) == marks.with_hash(MARK, written)
    write_atomic(target, "a new caption", expected=written,
                 mark=marks.Mark("", "d" * 64, "p2", "m2", "photo.jpg"))
    assert marks.ours(target).content == "d" * 64  # the last line for a name wins
    target.write_text("the owner's\n")
    assert marks.ours(target) is None
    moved = tmp_path / "pic.jpg.caption.md"
    os.unlink(target)
    write_atomic(target, "again", expected=None, mark=MARK)
    assert move_sidecar(target, moved)
    assert marks.ours(moved) is not None  # the marks file follows a move too


def test_the_marks_file_is_compacted_to_the_sidecars_still_there(tmp_path, no_xattrs,
                                                                  monkeypatch):
    monkeypatch.setattr(marks, "COMPACT_AT", 2000)
    monkeypatch.setattr(marks, "KEEP_RECENT", 2)
    for i in range(30):
        p = tmp_path / f"f{i}.jpg.caption.md"
        write_atomic(p, f"caption {i}", expected=None, mark=MARK)
        if i % 2:
            p.unlink()
    lines = (tmp_path / marks.MARKS_FILE).read_text().splitlines()
    assert len(lines) < 30
    assert marks.ours(tmp_path / "f28.jpg.caption.md") is not None
    assert text_hash("caption 28\n") == marks.ours(tmp_path / "f28.jpg.caption.md").sha256


def test_a_damaged_mark_is_no_mark(tmp_path):
    p = tmp_path / "x.caption.md"
    p.write_text("x\n")
    os.setxattr(p, marks.XATTR, b"{not json")
    assert marks.read(p) is None
    assert sidecar.inspect(p, None) == "foreign"


# -- an XMP sidecar's field marks: in the folder's marks file, always ------------------
XMP_MARKS = '{"description": "' + "d" * 64 + '", "altText": null, "keywords": ["sea"]}'
ANSWER = marks.with_hash(MARK, "e" * 64)  # the answer merged, the bytes written


def test_an_xmp_sidecars_marks_outlive_the_file_being_replaced(tmp_path):
    side = tmp_path / "photo.png.xmp"
    write_atomic(side, "<x:xmpmeta/>", expected=None, mark=MARK)
    marks.keep_xmp(side, XMP_MARKS, ANSWER)
    assert marks.xmp_marks(side) == XMP_MARKS
    # Another tool writes its own file in its place: the attribute goes, these stay.
    side.unlink()
    side.write_text("<x:xmpmeta/>")
    assert marks.read(side) is None
    assert marks.xmp_marks(side) == XMP_MARKS
    assert marks.xmp_answer(side) == ANSWER  # the answer merged: still the one it holds
    side.unlink()
    assert marks.xmp_answer(side) is None  # no file there: it holds no answer
    side.write_text("<x:xmpmeta/>")
    marks.keep_xmp(side, '{"keywords": []}', None)  # the last line for a name wins
    assert marks.xmp_marks(side) == '{"keywords": []}'
    assert marks.xmp_marks(tmp_path / "other.png.xmp") is None


def test_xmp_marks_are_none_without_a_readable_marks_file(tmp_path):
    side = tmp_path / "photo.png.xmp"
    assert marks.xmp_marks(side) is None  # no marks file
    (tmp_path / marks.MARKS_FILE).write_bytes(b'\x00\xff{"xmp": "photo.png.xmp", "mar\n[1]\n"x"\n'
                                             b'{"xmp": 3, "marks": "{}"}\n{"name": 1}\n')
    assert marks.xmp_marks(side) is None  # damaged lines: skipped, never a failure
    marks.keep_xmp(side, XMP_MARKS, None)  # appended after a line cut by a crash
    assert marks.xmp_marks(side) == XMP_MARKS
    # A folder that takes no marks file loses only this copy: the write goes on.
    assert marks.xmp_marks(tmp_path / "gone" / "p.xmp") is None
    marks.keep_xmp(tmp_path / "gone" / "p.xmp", XMP_MARKS, None)


def test_xmp_marks_and_sidecar_marks_share_the_file_and_survive_compaction(
        tmp_path, no_xattrs, monkeypatch):
    monkeypatch.setattr(marks, "COMPACT_AT", 3000)
    monkeypatch.setattr(marks, "KEEP_RECENT", 2)
    kept = tmp_path / "keep.png.xmp"
    kept.write_text("<x:xmpmeta/>")
    marks.keep_xmp(kept, XMP_MARKS, ANSWER)
    caption = tmp_path / "keep.png.caption.md"
    written = write_atomic(caption, "a caption", expected=None, mark=MARK)
    for i in range(40):
        p = tmp_path / f"f{i}.png.xmp"
        p.write_text("<x:xmpmeta/>")
        marks.keep_xmp(p, XMP_MARKS, None)
        p.unlink()  # gone: its line goes at the next compaction
    lines = (tmp_path / marks.MARKS_FILE).read_text().splitlines()
    assert len(lines) < 40  # compacted
    assert marks.xmp_marks(kept) == XMP_MARKS  # a sidecar still there keeps its XMP line
    assert marks.xmp_answer(kept) == ANSWER
    assert marks.ours(caption) == marks.with_hash(MARK, written)  # and its mark line
    assert marks.xmp_marks(tmp_path / "f3.png.xmp") is None


def test_xmp_marks_follow_their_sidecar_when_moved(tmp_path):
    old, new = tmp_path / "a.png.xmp", tmp_path / "b.png.xmp"
    write_atomic(old, "<x:xmpmeta/>", expected=None, mark=MARK)
    marks.keep_xmp(old, XMP_MARKS, ANSWER)
    assert move_sidecar(old, new)
    assert marks.xmp_marks(new) == XMP_MARKS
    assert marks.xmp_answer(new) == ANSWER


def test_a_compaction_keeps_the_mark_of_a_write_not_renamed_yet(tmp_path, no_xattrs,
                                                               monkeypatch):
    # Another folder thread marked its temp file (the mark goes in first) and has not
    # renamed it into place when this thread's append compacts the file.
    def gone(i: int) -> None:
        p = tmp_path / f"f{i}.png.xmp"
        p.write_text("<x:xmpmeta/>")
        marks.keep_xmp(p, XMP_MARKS, None)
        p.unlink()

    for i in range(20):
        gone(i)
    pending = tmp_path / "pending.png.caption.md"
    fd = os.open(tmp_path / ".pending.tmp", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        marks.set_on(fd, pending, MARK)  # its mark is in; not renamed to its name yet
    finally:
        os.close(fd)
    monkeypatch.setattr(marks, "KEEP_RECENT", 4)
    monkeypatch.setattr(marks, "COMPACT_AT", 1)  # the next append compacts
    gone(20)
    assert len((tmp_path / marks.MARKS_FILE).read_text().splitlines()) < 20  # compacted
    (tmp_path / ".pending.tmp").rename(pending)  # the rename comes
    assert marks.read(pending) == MARK
