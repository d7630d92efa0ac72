"""XMP sidecars: merged field by field into what other tools wrote, read back by exiv2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mediasync.emulator import Emulator, Fault
from mediasync.media.samples import png_bytes
from mediasync.outputs import xmp
from tests.helpers import JPEG, cli, damage_db, db_rows, write_config

pyexiv2 = pytest.importorskip("pyexiv2", reason="pyexiv2 (exiv2) writes and reads the sidecars")
pyexiv2.registerNs("http://darktable.sf.net/", "darktable")
NOT_DC = "http://example.com/not-dublin-core/"
pyexiv2.registerNs(NOT_DC, "notdc")

XMP_PROMPT = """
[[folders.prompts]]
kinds = ["image"]
format = "xmp"
prompt = "{prompt}"
{extra}
"""


def _exiv2_sidecar(path: Path) -> None:
    """A sidecar as darktable leaves it: a rating, an edit history and a person's tags."""
    path.write_text(xmp.EMPTY.replace('x:xmptk="mediasync"', 'x:xmptk="XMP Core 4.4.0-Exiv2"'))
    img = pyexiv2.Image(str(path))
    try:
        img.modify_xmp({
            "Xmp.xmp.Rating": "4",
            "Xmp.dc.subject": ["grandma", "beach"],
            "Xmp.darktable.history": 'type="Seq"',
            "Xmp.darktable.history[1]": 'type="Struct"',
            "Xmp.darktable.history[1]/darktable:operation": "exposure",
            "Xmp.darktable.history[1]/darktable:enabled": "1",
            "Xmp.darktable.history_end": "1",
        })
    finally:
        img.close()


def _read(path: Path) -> dict:
    img = pyexiv2.Image(str(path))
    try:
        return img.read_xmp()
    finally:
        img.close()


def _edit_description(path: Path, text: str) -> None:
    img = pyexiv2.Image(str(path))
    try:
        img.modify_xmp({"Xmp.dc.description": {'lang="x-default"': text}})
    finally:
        img.close()


# -- merge, pure ---------------------------------------------------------------
def test_a_new_sidecar_has_caption_keywords_and_alt_text(tmp_path):
    m = xmp.merge(None, xmp.Fields("A red door.", ("door", "red door"), "A red wooden door."))
    (tmp_path / "a.xmp").write_text(m.text)
    meta = _read(tmp_path / "a.xmp")
    assert meta["Xmp.dc.description"] == {'lang="x-default"': "A red door."}
    assert meta["Xmp.dc.subject"] == ["door", "red door"]
    assert meta["Xmp.iptc.AltTextAccessibility"] == {'lang="x-default"': "A red wooden door."}


def test_our_keywords_are_replaced_and_the_owners_kept(tmp_path):
    first = xmp.merge(None, xmp.Fields("One.", ("sea", "sky")))
    # The owner adds a tag of their own in between.
    (tmp_path / "a.xmp").write_text(first.text)
    img = pyexiv2.Image(str(tmp_path / "a.xmp"))
    img.modify_xmp({"Xmp.dc.subject": ["sea", "sky", "grandma"]})
    img.close()
    second = xmp.merge((tmp_path / "a.xmp").read_bytes(), xmp.Fields("Two.", ("sand",)))
    assert xmp.read_fields(second.text.encode()) == ("Two.", ["grandma", "sand"])


def test_a_description_that_was_there_first_is_the_owners():
    start = xmp.merge(None, xmp.Fields("Theirs.", ())).text
    # Strip our ownership marks: as if another tool had written the description.
    foreign = start.replace("mediasync:description=", "mediasync:unrelated=")
    m = xmp.merge(foreign.encode(), xmp.Fields("Ours.", ("k",)))
    assert m.kept == ("dc:description",)
    assert xmp.read_fields(m.text.encode()) == ("Theirs.", ["k"])


def test_a_description_in_attribute_form_is_the_owners_too():
    data = (f'<x:xmpmeta xmlns:x="{xmp.NS_X}"><rdf:RDF xmlns:rdf="{xmp.NS_RDF}">'
            f'<rdf:Description rdf:about="" xmlns:dc="{xmp.NS_DC}" dc:description="Mine."/>'
            "</rdf:RDF></x:xmpmeta>")
    m = xmp.merge(data.encode(), xmp.Fields("Ours.", ("k",)))
    assert m.kept == ("dc:description",) and 'dc:description="Mine."' in m.text


@pytest.mark.parametrize("data", [
    b"not xml at all",
    b"<html><body>hi</body></html>",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b"&a;</x:xmpmeta>",
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><other/></x:xmpmeta>',
])
def test_what_is_not_xmp_is_refused(data):
    with pytest.raises(xmp.NotXmp):
        xmp.merge(data, xmp.Fields("x", ()))


def test_an_owners_dc_prefix_bound_elsewhere_keeps_its_elements(tmp_path):
    """An owner's XMP may bind ``dc`` to a namespace of its own: its elements stay
    there, and Dublin Core gets a prefix of its own."""
    data = (f'<x:xmpmeta xmlns:x="{xmp.NS_X}"><rdf:RDF xmlns:rdf="{xmp.NS_RDF}">'
            f'<rdf:Description rdf:about="" xmlns:dc="{NOT_DC}">'
            "<dc:title>My own title</dc:title><dc:description>Not Dublin Core</dc:description>"
            "</rdf:Description></rdf:RDF></x:xmpmeta>")
    m = xmp.merge(data.encode(), xmp.Fields("Ours.", ("k",)))
    (tmp_path / "a.xmp").write_text(m.text)
    meta = _read(tmp_path / "a.xmp")
    assert meta["Xmp.notdc.title"] == "My own title"
    assert meta["Xmp.notdc.description"] == "Not Dublin Core"
    assert meta["Xmp.dc.description"] == {'lang="x-default"': "Ours."}
    assert meta["Xmp.dc.subject"] == ["k"]
    assert m.kept == ()


@pytest.mark.parametrize("wrapped", [True, False])
def test_an_xapmeta_root_of_older_adobe_tools_is_xmp(tmp_path, wrapped):
    body = (f'<x:xapmeta xmlns:x="{xmp.NS_X}" x:xaptk="3.1.1-111">'
            f'<rdf:RDF xmlns:rdf="{xmp.NS_RDF}"><rdf:Description rdf:about="" '
            'xmlns:xap="http://ns.adobe.com/xap/1.0/"><xap:Rating>3</xap:Rating>'
            "</rdf:Description></rdf:RDF></x:xapmeta>")
    if wrapped:
        body = ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + body
                + '\n<?xpacket end="w"?>')
    xmp.check(body.encode())
    m = xmp.merge(body.encode(), xmp.Fields("Ours.", ("k",)))
    (tmp_path / "a.xmp").write_text(m.text)
    meta = _read(tmp_path / "a.xmp")  # exiv2 knows an unwrapped file only as x:xmpmeta
    assert meta["Xmp.xmp.Rating"] == "3"
    assert meta["Xmp.dc.description"] == {'lang="x-default"': "Ours."}


def _regenerate_without_marks(path: Path, extra_tag: str) -> None:
    """As darktable writes a sidecar from its own database: our caption and keywords
    were imported into it, the owner added a tag, our marks are gone."""
    meta = _read(path)
    assert "Xmp.mediasync.description" in meta
    path.unlink()
    path.write_text(xmp.EMPTY.replace('x:xmptk="mediasync"', 'x:xmptk="XMP Core 4.4.0-Exiv2"'))
    img = pyexiv2.Image(str(path))
    try:
        img.modify_xmp({
            "Xmp.xmp.Rating": "3",
            "Xmp.dc.description": meta["Xmp.dc.description"],
            "Xmp.dc.subject": [*meta["Xmp.dc.subject"], extra_tag],
        })
    finally:
        img.close()
    assert not any(k.startswith("Xmp.mediasync.") for k in _read(path))


def test_marks_a_tool_dropped_are_remembered():
    first = xmp.merge(None, xmp.Fields("Ours.", ("sea", "sky")))
    bare = (f'<x:xmpmeta xmlns:x="{xmp.NS_X}"><rdf:RDF xmlns:rdf="{xmp.NS_RDF}">'
            f'<rdf:Description rdf:about="" xmlns:dc="{xmp.NS_DC}">'
            '<dc:description><rdf:Alt><rdf:li xml:lang="x-default">Ours.</rdf:li></rdf:Alt>'
            "</dc:description><dc:subject><rdf:Bag><rdf:li>sea</rdf:li><rdf:li>sky</rdf:li>"
            "<rdf:li>grandma</rdf:li></rdf:Bag></dc:subject></rdf:Description></rdf:RDF>"
            "</x:xmpmeta>").encode()
    remembered = xmp.Marks.from_json(first.marks.to_json())
    m = xmp.merge(bare, xmp.Fields("New.", ("sand",)), remembered=remembered)
    assert m.kept == ()
    assert xmp.read_fields(m.text.encode()) == ("New.", ["grandma", "sand"])
    # Without the memory, the same file is the owner's: nothing of ours is taken back.
    m = xmp.merge(bare, xmp.Fields("New.", ("sand",)))
    assert m.kept == ("dc:description",)


# -- through the daemon ----------------------------------------------------------
def _config(tmp_path: Path, emu: Emulator, prompt: str, extra: str = "") -> Path:
    return write_config(tmp_path, emu.base_url,
                        prompts=XMP_PROMPT.format(prompt=prompt, extra=extra))


def test_a_darktable_sidecar_keeps_everything_and_an_owner_edit_survives(tmp_path, emu):
    cfg = _config(tmp_path, emu, "Caption this photo.")
    inbox = tmp_path / "inbox"
    (inbox / "photo.png").write_bytes(png_bytes(seed=7))
    sidecar = inbox / "photo.png.xmp"
    _exiv2_sidecar(sidecar)

    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    meta = _read(sidecar)
    assert meta["Xmp.xmp.Rating"] == "4"
    assert meta["Xmp.darktable.history[1]/darktable:operation"] == "exposure"
    assert meta["Xmp.darktable.history_end"] == "1"
    assert meta["Xmp.dc.subject"] == ["grandma", "beach", "image"]
    assert "image/png" in meta["Xmp.dc.description"]['lang="x-default"']

    # darktable touches the file (a new rating); the owner rewrites the caption.
    img = pyexiv2.Image(str(sidecar))
    img.modify_xmp({"Xmp.xmp.Rating": "5"})
    img.close()
    _edit_description(sidecar, "Grandma at the beach, 1987.")
    # A prompt change regenerates: the keywords are ours to update, the caption is not.
    cfg = _config(tmp_path, emu, "Caption this photo for the family album.")
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    meta = _read(sidecar)
    assert meta["Xmp.dc.description"] == {'lang="x-default"': "Grandma at the beach, 1987."}
    assert meta["Xmp.xmp.Rating"] == "5"
    assert meta["Xmp.dc.subject"] == ["grandma", "beach", "image"]
    assert "kept the owner's dc:description" in r.stderr


def test_a_description_still_ours_is_updated_when_darktable_touched_the_file(tmp_path, emu):
    cfg = _config(tmp_path, emu, "Caption this photo.")
    inbox = tmp_path / "inbox"
    (inbox / "photo.png").write_bytes(png_bytes(seed=8))
    assert cli(cfg, "sync").returncode == 0
    sidecar = inbox / "photo.png.xmp"
    img = pyexiv2.Image(str(sidecar))
    img.modify_xmp({"Xmp.xmp.Rating": "2"})  # the whole file's bytes change
    img.close()
    cfg = _config(tmp_path, emu, "Caption this photo briefly.")
    assert cli(cfg, "sync").returncode == 0
    meta = _read(sidecar)
    assert "briefly" in meta["Xmp.dc.description"]['lang="x-default"']
    assert meta["Xmp.xmp.Rating"] == "2"


def test_a_sidecar_that_is_not_xmp_is_left_alone_with_a_reason(tmp_path, emu):
    cfg = _config(tmp_path, emu, "Caption this photo.", 'naming = "stem"')
    inbox = tmp_path / "inbox"
    (inbox / "photo.png").write_bytes(png_bytes(seed=9))
    (inbox / "photo.xmp").write_text("my notes, not XML\n")
    r = cli(cfg, "sync")
    assert r.returncode == 1
    assert (inbox / "photo.xmp").read_text() == "my notes, not XML\n"
    [(outcome, message)] = db_rows(cfg, "SELECT outcome, message FROM outputs")
    assert outcome == "failed"
    assert "photo.xmp is not an XMP sidecar" in message and "not well-formed" in message


def test_a_stem_named_sidecar_is_not_shared_by_two_photos(tmp_path, emu):
    cfg = _config(tmp_path, emu, "Caption this photo.", 'naming = "stem"')
    inbox = tmp_path / "inbox"
    (inbox / "IMG_1.png").write_bytes(png_bytes(seed=10))
    assert cli(cfg, "sync").returncode == 0
    first = (inbox / "IMG_1.xmp").read_text()
    (inbox / "IMG_1.jpg").write_bytes(JPEG)
    r = cli(cfg, "sync")
    assert r.returncode == 1
    assert (inbox / "IMG_1.xmp").read_text() == first
    assert "IMG_1.xmp holds mediasync's fields for IMG_1.png" in r.stderr


def test_mode_owner_and_group_of_the_owners_sidecar_are_kept(tmp_path, emu):
    """A private 660 sidecar stays 660 with its owner and group. It is replaced by
    rename (a crash never leaves it half written), so a hard link to it keeps the
    previous version: see docs/architecture.md."""
    cfg = _config(tmp_path, emu, "Caption this photo.")
    inbox = tmp_path / "inbox"
    (inbox / "photo.png").write_bytes(png_bytes(seed=11))
    sidecar = inbox / "photo.png.xmp"
    _exiv2_sidecar(sidecar)
    os.chmod(sidecar, 0o660)
    before = sidecar.stat()
    owner = (before.st_uid, before.st_gid)
    if os.geteuid() == 0:
        owner = (1, 1)  # another user's file, as root may make it
        os.chown(sidecar, *owner)
    backup = tmp_path / "backup.xmp"
    os.link(sidecar, backup)
    old = backup.read_bytes()

    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    after = sidecar.stat()
    assert oct(after.st_mode & 0o7777) == oct(0o660)
    assert (after.st_uid, after.st_gid) == owner
    meta = _read(sidecar)
    assert "image/png" in meta["Xmp.dc.description"]['lang="x-default"']
    assert meta["Xmp.xmp.Rating"] == "4"
    # The other name keeps the version it had, whole.
    assert backup.read_bytes() == old and after.st_ino != backup.stat().st_ino
    assert _read(backup)["Xmp.xmp.Rating"] == "4"


def test_an_xapmeta_sidecar_is_merged_not_refused(tmp_path, emu):
    cfg = _config(tmp_path, emu, "Caption this photo.")
    inbox = tmp_path / "inbox"
    (inbox / "photo.png").write_bytes(png_bytes(seed=12))
    sidecar = inbox / "photo.png.xmp"
    sidecar.write_text(
        f'<x:xapmeta xmlns:x="{xmp.NS_X}"><rdf:RDF xmlns:rdf="{xmp.NS_RDF}">'
        '<rdf:Description rdf:about="" xmlns:xap="http://ns.adobe.com/xap/1.0/">'
        "<xap:Rating>2</xap:Rating></rdf:Description></rdf:RDF></x:xapmeta>")
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    meta = _read(sidecar)
    assert meta["Xmp.xmp.Rating"] == "2"
    assert "image/png" in meta["Xmp.dc.description"]['lang="x-default"']


@pytest.mark.parametrize("state", ["kept", "damaged"])
def test_a_sidecar_regenerated_without_our_marks_stays_ours(tmp_path, emu, state):
    """darktable rewrites the XMP from its database and drops our marks: the caption
    we wrote is still ours to update, and our old keywords do not pile up. Also when
    the state database is damaged after that, and rebuilt without the store's copy
    of the marks: the folder's marks file still has them and the answer merged, so
    nothing is paid for again and the caption is still ours (the combined soak)."""
    cfg = _config(tmp_path, emu, "Caption this photo.")
    inbox = tmp_path / "inbox"
    (inbox / "photo.png").write_bytes(png_bytes(seed=13))
    sidecar = inbox / "photo.png.xmp"
    emu.add_fault(Fault(kind="answer", text=json.dumps(
        {"caption": "A lighthouse.", "keywords": ["lighthouse", "sea"]})))
    assert cli(cfg, "sync").returncode == 0
    assert _read(sidecar)["Xmp.dc.subject"] == ["lighthouse", "sea"]
    _regenerate_without_marks(sidecar, "holiday")
    if state == "damaged":
        damage_db(tmp_path / "state" / "state.db")
        paid = emu.stats()["requests"].get("generate", 0)
        r = cli(cfg, "sync")
        assert r.returncode == 0, r.stderr
        assert r.stderr.count("the state database was damaged") == 1
        assert emu.stats()["requests"].get("generate", 0) == paid  # still the answer held
        assert db_rows(cfg, "SELECT outcome FROM outputs") == [("written",)]
        assert db_rows(cfg, "SELECT * FROM xmp_marks") == []  # the rebuilt store has none

    emu.add_fault(Fault(kind="answer", text=json.dumps(
        {"caption": "A red lighthouse by the sea.", "keywords": ["lighthouse", "red"]})))
    cfg = _config(tmp_path, emu, "Caption this photo in more detail.")
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    meta = _read(sidecar)
    assert meta["Xmp.dc.description"] == {'lang="x-default"': "A red lighthouse by the sea."}
    assert meta["Xmp.dc.subject"] == ["holiday", "lighthouse", "red"]
    assert meta["Xmp.xmp.Rating"] == "3"
    assert "kept the owner's" not in r.stderr
    if state == "damaged":
        assert db_rows(cfg, "SELECT outcome FROM outputs") == [("written",)]
