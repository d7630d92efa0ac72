"""Names and links (issue 18, item 12): a file name that is not UTF-8 is mirrored,
captioned and shown escaped; a symbolic link is listed as skipped with the reason,
or followed inside its folder with `follow_symlinks`. The real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mediasync.media.samples import png_bytes
from tests.helpers import cli, write_config


def test_a_name_that_is_not_utf8_is_mirrored_captioned_and_shown_escaped(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url)
    inbox = os.fsencode(tmp_path / "inbox")
    odd = inbox + b"/caf\xe9 \xff.png"  # Latin-1 from an old camera card, and a stray byte
    with open(odd, "wb") as f:
        f.write(png_bytes(seed=120))
    (tmp_path / "inbox" / "plain.png").write_bytes(png_bytes(seed=121))

    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "UnicodeEncodeError" not in r.stderr
    assert "2 of 2 file(s) synced" in r.stderr
    with open(odd + b".caption.md", "rb") as f:
        assert f.read().strip()
    assert emu.stats()["uploads_started"] == 2

    text = cli(cfg, "status").stdout
    assert "caf\\xe9 \\xff.png: synced" in text
    assert "caf\\xe9 \\xff.png.caption.md: written" in text
    doc = json.loads(cli(cfg, "status", "--json").stdout)
    names = sorted(Path(f["path"]).name for f in doc["files"])
    assert names == ["caf\\xe9 \\xff.png", "plain.png"]
    assert {f["state"] for f in doc["files"]} == {"synced"}
    gens = emu.stats()["requests"]["generate"]
    r = cli(cfg, "sync")  # nothing left over: no retry, nothing paid again
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert emu.stats()["requests"]["generate"] == gens


def _links(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    (inbox / "photo.png").write_bytes(png_bytes(seed=122))
    (tmp_path / "elsewhere.png").write_bytes(png_bytes(seed=123))
    os.symlink("photo.png", inbox / "link.png")
    os.symlink(tmp_path / "elsewhere.png", inbox / "out.png")
    return inbox


def test_a_symlinked_media_file_is_listed_as_skipped_with_the_reason(tmp_path, emu):
    inbox = _links(tmp_path)
    cfg = write_config(tmp_path, emu.base_url)
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr  # a link not followed is a choice, not a failure
    assert "1 of 1 file(s) synced" in r.stderr and "2 file(s) skipped" in r.stderr
    doc = json.loads(cli(cfg, "status", "--json").stdout)
    by_name = {Path(f["path"]).name: f for f in doc["files"]}
    assert by_name["photo.png"]["state"] == "synced"
    for name in ("link.png", "out.png"):
        assert by_name[name]["state"] == "skipped"
        assert "symbolic link" in by_name[name]["message"]
        assert "follow_symlinks" in by_name[name]["message"]
    assert "link.png: skipped" in cli(cfg, "status").stdout
    assert not (inbox / "link.png.caption.md").exists()


def test_follow_symlinks_mirrors_links_that_stay_inside_the_folder(tmp_path, emu):
    inbox = _links(tmp_path)
    cfg = write_config(tmp_path, emu.base_url, folder_extra="follow_symlinks = true")
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert (inbox / "link.png.caption.md").is_file()  # next to the link
    assert not (tmp_path / "elsewhere.png.caption.md").exists()
    doc = json.loads(cli(cfg, "status", "--json").stdout)
    by_name = {Path(f["path"]).name: f for f in doc["files"]}
    assert by_name["link.png"]["state"] == "synced"
    assert by_name["out.png"]["state"] == "skipped"
    assert "outside the folder" in by_name["out.png"]["message"]
    assert emu.stats()["uploads_started"] == 1  # the link and its target: one content
    gens = emu.stats()["requests"]["generate"]
    assert cli(cfg, "sync").returncode == 0
    assert emu.stats()["requests"]["generate"] == gens  # nothing "moved" under a link
