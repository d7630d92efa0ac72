from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from mediasync.local import sidecar
from mediasync.local.sidecar import (
    TEMP_PREFIX,
    clean_stale_temps,
    inspect,
    move_sidecar,
    text_hash,
    write_atomic,
)
from mediasync.rules.naming import sidecar_path

ODD_NAMES = [
    "photo.jpg",
    "with space.jpg",
    "ünïcødé 写真.jpg",
    "new\nline.jpg",
    "-starts-with-dash.jpg",
    "'quotes\" and $dollar.jpg",
    "emoji 🎉.mp3",
]


def temps(directory: Path) -> list[str]:
    return [n for n in os.listdir(directory) if n.startswith(TEMP_PREFIX)]


# --- naming and hashing -------------------------------------------------------


def test_sidecar_path():
    assert sidecar_path(Path("/m/photo.jpg"), ".caption.md") == Path("/m/photo.jpg.caption.md")
    assert sidecar_path(Path("memo.mp3"), ".transcript.txt") == Path("memo.mp3.transcript.txt")
    assert sidecar_path(Path("/m/a.b.c.mov"), ".x") == Path("/m/a.b.c.mov.x")


@pytest.mark.parametrize("name", ODD_NAMES)
def test_sidecar_path_odd_names(name):
    p = sidecar_path(Path("/m/sub") / name, ".caption.md")
    assert p.parent == Path("/m/sub")
    assert p.name == name + ".caption.md"


@pytest.mark.parametrize("bad", ["caption.md", ".a/b", "", "."])
def test_sidecar_path_rejects_bad_suffix(bad):
    with pytest.raises(ValueError):
        sidecar_path(Path("/m/photo.jpg"), bad)


def test_text_hash():
    assert text_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert text_hash("é") == text_hash("é".encode())
    assert len(text_hash(b"x")) == 64


# --- inspect ------------------------------------------------------------------------


def test_inspect_states(tmp_path):
    p = tmp_path / "a.jpg.caption.md"
    assert inspect(p, None) == "missing"
    assert inspect(p, "whatever") == "missing"
    p.write_text("hello\n")
    assert inspect(p, None) == "foreign"
    assert inspect(p, text_hash("hello\n")) == "ours"
    assert inspect(p, text_hash("other\n")) == "edited"


def test_inspect_non_regular_files(tmp_path):
    d = tmp_path / "dir.caption.md"
    d.mkdir()
    assert inspect(d, None) == "foreign"
    assert inspect(d, text_hash("x")) == "edited"
    target = tmp_path / "target"
    target.write_text("x\n")
    link = tmp_path / "link.caption.md"
    link.symlink_to(target)
    # even if the target's bytes are ours, a symlink was put there by the owner
    assert inspect(link, text_hash("x\n")) == "edited"
    assert inspect(link, None) == "foreign"
    dangling = tmp_path / "dangling.caption.md"
    dangling.symlink_to(tmp_path / "nowhere")
    assert inspect(dangling, None) == "foreign"


# --- write_atomic -------------------------------------------------------------------


@pytest.mark.parametrize("name", ODD_NAMES)
def test_write_new(tmp_path, name):
    p = sidecar_path(tmp_path / name, ".caption.md")
    h = write_atomic(p, "A cat on a mat.", expected=None)
    assert p.read_text(encoding="utf-8") == "A cat on a mat.\n"  # newline added
    assert h == text_hash("A cat on a mat.\n")
    assert inspect(p, h) == "ours"
    assert temps(tmp_path) == []


def test_write_keeps_existing_newline_and_unicode(tmp_path):
    p = tmp_path / "x.caption.md"
    h = write_atomic(p, "Zwei Äpfel — 两个苹果\n", expected=None)
    assert p.read_bytes() == "Zwei Äpfel — 两个苹果\n".encode()
    assert h == text_hash(p.read_bytes())


def test_write_mode_honours_umask(tmp_path):
    old = os.umask(0o027)
    try:
        p = tmp_path / "x.caption.md"
        write_atomic(p, "t", expected=None)
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o640


def test_overwrite_ours(tmp_path):
    p = tmp_path / "x.caption.md"
    h1 = write_atomic(p, "first", expected=None)
    inode = p.stat().st_ino
    h2 = write_atomic(p, "second", expected=h1)
    assert p.read_text() == "second\n"
    assert h2 == text_hash("second\n") and h2 != h1
    assert p.stat().st_ino != inode  # replaced, not rewritten in place
    assert temps(tmp_path) == []


def test_owner_edit_is_kept(tmp_path):
    p = tmp_path / "x.caption.md"
    h1 = write_atomic(p, "ours", expected=None)
    p.write_text("the owner's better caption\n")
    assert write_atomic(p, "new generation", expected=h1) is None
    assert p.read_text() == "the owner's better caption\n"
    assert temps(tmp_path) == []


def test_foreign_file_is_kept(tmp_path):
    p = tmp_path / "x.caption.md"
    p.write_text("written by hand before mediasync\n")
    assert write_atomic(p, "generated", expected=None) is None
    assert p.read_text() == "written by hand before mediasync\n"
    # even when its bytes happen to equal what we would write
    p.write_text("generated\n")
    assert write_atomic(p, "generated", expected=None) is None


def test_deleted_sidecar_is_written_again(tmp_path):
    p = tmp_path / "x.caption.md"
    h = write_atomic(p, "one", expected=None)
    p.unlink()
    assert write_atomic(p, "two", expected=h) == text_hash("two\n")
    assert p.read_text() == "two\n"


def test_directory_in_the_way_is_kept(tmp_path):
    p = tmp_path / "x.caption.md"
    p.mkdir()
    assert write_atomic(p, "t", expected=None) is None
    assert p.is_dir()
    assert temps(tmp_path) == []


def test_symlink_is_not_followed_or_replaced(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    p = tmp_path / "x.caption.md"
    p.symlink_to(target)
    assert write_atomic(p, "t", expected=text_hash("precious\n")) is None
    assert p.is_symlink() and target.read_text() == "precious\n"


def test_no_partial_file_visible(tmp_path, monkeypatch):
    """While the bytes are being written, the sidecar path holds the old file."""
    p = tmp_path / "x.caption.md"
    h = write_atomic(p, "old", expected=None)
    seen = []
    real_write = os.write

    def spying_write(fd, data):
        seen.append(p.read_text())
        # write one byte at a time: exercises the short-write loop too
        return real_write(fd, bytes(data[:1]))

    monkeypatch.setattr(sidecar.os, "write", spying_write)
    write_atomic(p, "new " * 10, expected=h)
    assert seen and set(seen) == {"old\n"}
    assert p.read_text() == "new " * 10 + "\n"


def test_temp_removed_on_write_error(tmp_path, monkeypatch):
    p = tmp_path / "x.caption.md"
    h = write_atomic(p, "old", expected=None)

    def failing_fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sidecar.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        write_atomic(p, "new", expected=h)
    assert p.read_text() == "old\n"
    assert temps(tmp_path) == []


def test_temp_removed_on_replace_error(tmp_path, monkeypatch):
    p = tmp_path / "x.caption.md"
    h = write_atomic(p, "old", expected=None)

    def failing_replace(src, dst):
        raise PermissionError(errno.EACCES, "denied")

    monkeypatch.setattr(sidecar.os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        write_atomic(p, "new", expected=h)
    assert p.read_text() == "old\n"
    assert temps(tmp_path) == []


def test_missing_directory_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "gone" / "x.caption.md", "t", expected=None)


def test_race_owner_edits_during_write(tmp_path, monkeypatch):
    """The owner saves an edit after the first check but before the swap."""
    p = tmp_path / "x.caption.md"
    h = write_atomic(p, "ours", expected=None)
    real_make_temp = sidecar.make_temp

    def make_temp_then_owner_edits(directory, data, *rest):
        tmp = real_make_temp(directory, data, *rest)
        p.write_text("owner's edit\n")
        return tmp

    monkeypatch.setattr(sidecar, "make_temp", make_temp_then_owner_edits)
    assert write_atomic(p, "regenerated", expected=h) is None
    assert p.read_text() == "owner's edit\n"
    assert temps(tmp_path) == []


def test_race_owner_creates_during_write(tmp_path, monkeypatch):
    """The sidecar was missing at the first check; the owner creates one meanwhile."""
    p = tmp_path / "x.caption.md"
    real_make_temp = sidecar.make_temp

    def make_temp_then_owner_creates(directory, data, *rest):
        tmp = real_make_temp(directory, data, *rest)
        p.write_text("owner's own\n")
        return tmp

    monkeypatch.setattr(sidecar, "make_temp", make_temp_then_owner_creates)
    assert write_atomic(p, "generated", expected=None) is None
    assert p.read_text() == "owner's own\n"
    assert temps(tmp_path) == []


def test_race_owner_creates_between_recheck_and_link(tmp_path, monkeypatch):
    """Even inside the last window, link() refuses to clobber the owner's new file."""
    p = tmp_path / "x.caption.md"
    real_inspect = sidecar.inspect
    calls = []

    def inspect_then_owner_creates(path, recorded):
        state = real_inspect(path, recorded)
        calls.append(state)
        if len(calls) == 2:  # the re-check just before the swap
            p.write_text("owner's own\n")
        return state

    monkeypatch.setattr(sidecar, "inspect", inspect_then_owner_creates)
    assert write_atomic(p, "generated", expected=None) is None
    assert p.read_text() == "owner's own\n"
    assert temps(tmp_path) == []


def test_without_hard_links_falls_back_to_replace(tmp_path, monkeypatch):
    def no_link(*a, **k):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(sidecar.os, "link", no_link)
    p = tmp_path / "x.caption.md"
    assert write_atomic(p, "t", expected=None) == text_hash("t\n")
    assert p.read_text() == "t\n"
    assert temps(tmp_path) == []


# --- move_sidecar ------------------------------------------------------------------


def test_move(tmp_path):
    old = tmp_path / "a.jpg.caption.md"
    old.write_text("cap\n")
    (tmp_path / "sub").mkdir()
    new = tmp_path / "sub" / "b é.jpg.caption.md"
    assert move_sidecar(old, new) is True
    assert not old.exists() and new.read_text() == "cap\n"


def test_move_never_clobbers(tmp_path):
    old = tmp_path / "a.caption.md"
    new = tmp_path / "b.caption.md"
    old.write_text("old\n")
    new.write_text("owner's\n")
    assert move_sidecar(old, new) is False
    assert old.read_text() == "old\n" and new.read_text() == "owner's\n"


def test_move_missing_source(tmp_path):
    assert move_sidecar(tmp_path / "nope", tmp_path / "new") is False
    assert not (tmp_path / "new").exists()


def test_move_onto_itself(tmp_path):
    p = tmp_path / "a.caption.md"
    p.write_text("x\n")
    assert move_sidecar(p, p) is False
    assert p.read_text() == "x\n"


def test_move_race_new_appears(tmp_path, monkeypatch):
    """new is created after the existence check: link() still refuses."""
    old = tmp_path / "a.caption.md"
    new = tmp_path / "b.caption.md"
    old.write_text("old\n")
    real_link = os.link

    def link_after_owner(src, dst, **kw):
        new.write_text("owner's\n")
        return real_link(src, dst, **kw)

    monkeypatch.setattr(sidecar.os, "link", link_after_owner)
    assert move_sidecar(old, new) is False
    assert old.read_text() == "old\n" and new.read_text() == "owner's\n"


def test_move_without_hard_links(tmp_path, monkeypatch):
    def no_link(*a, **k):
        raise OSError(errno.EOPNOTSUPP, "not supported")

    monkeypatch.setattr(sidecar.os, "link", no_link)
    old = tmp_path / "a.caption.md"
    old.write_text("x\n")
    new = tmp_path / "b.caption.md"
    assert move_sidecar(old, new) is True
    assert new.read_text() == "x\n" and not old.exists()
    old.write_text("y\n")
    assert move_sidecar(old, new) is False
    assert new.read_text() == "x\n"


def test_move_symlink_moves_the_link(tmp_path):
    target = tmp_path / "t"
    target.write_text("x\n")
    old = tmp_path / "a.caption.md"
    old.symlink_to(target)
    new = tmp_path / "b.caption.md"
    assert move_sidecar(old, new) is True
    assert new.is_symlink() and not os.path.lexists(old)


# --- clean_stale_temps ---------------------------------------------------------------


def test_clean_stale_temps(tmp_path):
    now = 1_000_000.0
    old_tmp = tmp_path / f"{TEMP_PREFIX}aaaa"
    young_tmp = tmp_path / f"{TEMP_PREFIX}bbbb"
    other = tmp_path / "photo.jpg"
    dir_tmp = tmp_path / f"{TEMP_PREFIX}dir"
    for f in (old_tmp, young_tmp, other):
        f.write_text("x")
    dir_tmp.mkdir()
    os.utime(old_tmp, (now - 7200, now - 7200))
    os.utime(young_tmp, (now - 10, now - 10))
    os.utime(other, (now - 7200, now - 7200))
    os.utime(dir_tmp, (now - 7200, now - 7200))
    assert clean_stale_temps(tmp_path, older_than=3600, now=now) == 1
    assert not old_tmp.exists()
    assert young_tmp.exists() and other.exists() and dir_tmp.is_dir()
    assert clean_stale_temps(tmp_path, older_than=3600, now=now) == 0


def test_clean_stale_temps_missing_dir(tmp_path):
    assert clean_stale_temps(tmp_path / "gone", 60, 0) == 0


def test_a_temp_file_being_written_is_never_stale(tmp_path):
    """Its mtime may look old (a server clock behind ours, a clock step forward):
    a temp file this process is writing is not removed by the clean-up."""
    import time

    from mediasync.local import sidecar as sc

    tmp = sc.make_temp(tmp_path, b"half a caption")
    old = time.time() - 3600
    os.utime(tmp, (old, old))
    assert sc.clean_stale_temps(tmp_path, 600, time.time()) == 0
    assert tmp.exists()
    sc.release_temp(tmp)  # the write ended without renaming it (a crash would leave it so)
    assert sc.clean_stale_temps(tmp_path, 600, time.time()) == 1
    assert not tmp.exists()


def test_a_replaced_sidecar_keeps_its_mode(tmp_path):
    p = tmp_path / "photo.jpg.caption.md"
    h = write_atomic(p, "one", expected=None)
    os.chmod(p, 0o640)
    write_atomic(p, "two", expected=h)
    assert stat.S_IMODE(p.stat().st_mode) == 0o640 and p.read_text() == "two\n"


def test_a_group_that_cannot_be_kept_loses_its_bits(tmp_path, monkeypatch):
    """Not root and not in the file's group: its group bits must not go to ours."""
    p = tmp_path / "photo.jpg.xmp"
    h = write_atomic(p, "one", expected=None)
    os.chmod(p, 0o664)

    def refuse(*a, **k):
        raise PermissionError(errno.EPERM, "not permitted")

    monkeypatch.setattr(sidecar.os, "chown", refuse)
    write_atomic(p, "two", expected=h)
    assert stat.S_IMODE(p.stat().st_mode) == 0o604
