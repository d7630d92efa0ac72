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
