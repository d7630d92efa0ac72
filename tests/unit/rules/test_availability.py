"""A disk mounted inside a watched folder: which ones were recorded, which are
pulled now, and which file each one holds (docs/architecture.md, "Folders that go away")."""

from __future__ import annotations

from pathlib import Path

from mediasync.config import parse_config
from mediasync.local.folderio import look_at_folder, submounts_holding
from mediasync.report import status
from mediasync.rules import availability, desired
from mediasync.store import Meta, OutputRow, PathRow, Store

FOLDER = "/home/u/Pictures"


def test_submounts_holding_counts_each_file_for_its_innermost_mount_inside_the_folder():
    mounts = frozenset({"/", "/home", f"{FOLDER}/card", f"{FOLDER}/card/sub", f"{FOLDER}/cardx",
                        "/media/elsewhere"})
    files = ["top.png", "card/a.png", "card/sub/b.png", "cardish/c.png"]
    assert submounts_holding(FOLDER, files, mounts) == {"card", "card/sub"}
    assert submounts_holding(FOLDER, ["card/sub/b.png"], mounts) == {"card/sub"}
    # an empty mount point holds nothing; the folder's own mount is not inside it
    assert submounts_holding(FOLDER, ["top.png"], mounts | {FOLDER}) == set()
    assert submounts_holding(FOLDER + "/", files, mounts) == {"card", "card/sub"}


def test_a_recorded_submount_is_unavailable_only_while_missing_from_the_mount_table():
    mounted = frozenset({"/", f"{FOLDER}/card"})
    pulled = frozenset({"/"})
    present = {"card"}
    assert availability.submounts_unavailable(FOLDER, ["card"], mounted, present) == {}
    why = availability.submounts_unavailable(FOLDER, ["card"], pulled, present)
    assert list(why) == ["card"] and "is not mounted" in why["card"], why
    assert f"{FOLDER}/card" in why["card"]
    # its directory removed: its owner took it away, the files are deleted
    assert availability.submounts_unavailable(FOLDER, ["card"], pulled, set()) == {}
    # mount table unreadable: unknown counts as available, as for folders
    assert availability.submounts_unavailable(FOLDER, ["card"], None, present) == {}
    assert availability.submounts_unavailable(FOLDER, [], pulled, present) == {}


def test_record_keeps_pulled_submounts_and_drops_empty_remounted_ones():
    # held a file now: recorded
    assert availability.record_submounts([], ["card"], []) == ["card"]
    # pulled: kept though it holds nothing now (else its files count deleted next scan)
    assert availability.record_submounts(["card"], [], ["card"]) == ["card"]
    # mounted again, empty (or its directory gone): dropped
    assert availability.record_submounts(["card", "usb"], ["usb"], []) == ["usb"]
    # only a recorded one can be kept for being away
    assert availability.record_submounts([], [], ["card"]) == []


def test_the_innermost_unavailable_key_holds_a_path():
    away = {FOLDER: "does not answer", f"{FOLDER}/card": "is not mounted"}
    assert availability.unavailable_holding(f"{FOLDER}/card/a.png", away) == f"{FOLDER}/card"
    assert availability.unavailable_holding(f"{FOLDER}/top.png", away) == FOLDER
    card = {f"{FOLDER}/card": "x"}
    assert availability.unavailable_holding(f"{FOLDER}/cardx/a.png", card) is None
    assert availability.unavailable_holding(f"{FOLDER}/card", card) == f"{FOLDER}/card"
    assert availability.unavailable_holding("/elsewhere/a.png", away) is None
    assert availability.unavailable_holding(f"{FOLDER}/a.png", {}) is None


def test_look_at_folder_tells_which_submount_directories_are_left(tmp_path):
    (tmp_path / "card").mkdir()
    (tmp_path / "file").write_text("x")
    look = look_at_folder(str(tmp_path), ["card", "gone", "file"])
    assert look.present == {"card"}
    assert look_at_folder(str(tmp_path / "missing"), ["card"]).present == frozenset()


def test_status_shows_a_file_on_a_pulled_disk_as_waiting_with_the_reason(tmp_path):
    folder = tmp_path / "f"
    config = parse_config({"folders": [{"path": str(folder)}]}, source=tmp_path / "c.toml")
    store = Store(tmp_path / "state.db")
    for name in ("top.png", "card/a.png"):
        row = PathRow(path=str(folder / name), folder=str(folder), size=10, mtime_ns=1, inode=1,
                      sha256="s1", kind="image", mime="image/png", problem=None, gone_at=None,
                      updated_at=0.0)
        store.put_path(row)
        (want,) = desired.desired(config.folders[0], row.path, "image", config.api.model)
        store.put_output(OutputRow(
            path=row.path, suffix=want.suffix, sha256="s1", prompt_hash=want.prompt_hash,
            model=want.model, sidecar=want.sidecar, written_hash="h", pending_hash=None,
            outcome="written", message=None, prompt_tokens=1, output_tokens=1,
            thoughts_tokens=0, retry_at=None, attempts=1, at=0.0,
        ))
    store.ensure_content("s1", 10, "image/png", "image", 0.0)
    store.update_content("s1", 0.0, remote_name="files/a", uri="u", expires_at=40 * 3600.0)
    card = str(folder / "card")
    store.write(Meta.UNAVAILABLE, {card: "is not mounted (it left)"})
    try:
        by_name = {Path(r.path).name: r for r in status.build(store, config, now=3600.0)}
    finally:
        store.close()
    assert by_name["top.png"].state == "synced"  # the rest of the folder is no outage
    a = by_name["a.png"]
    assert a.state == "waiting"
    assert a.message == f"waiting: the folder {card} is not mounted (it left)"
    counts = status.counts(list(by_name.values()))
    assert status.status_line(1, counts).endswith("1 synced · 0 uploading · 0 pending · "
                                                 "1 waiting · 0 failed")


def test_folder_unavailable_tells_an_unmount_from_deleted_files():
    assert availability.folder_unavailable(None, 1, None) == "does not exist or is not a directory"
    # was its own file system with files, now on the parent's: unmounted
    assert "mount point" in (availability.folder_unavailable(1, 1, 7) or "")
    assert availability.folder_unavailable(7, 1, 7) is None  # mounted
    assert availability.folder_unavailable(9, 1, 7) is None  # another disk mounted there
    assert availability.folder_unavailable(1, 1, 1) is None  # a plain folder: deletions are real
    assert availability.folder_unavailable(1, 1, None) is None  # never seen with files
