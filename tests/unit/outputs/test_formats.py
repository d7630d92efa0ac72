"""formats.py against what can sit where an XMP sidecar goes: FIFOs, directories,
a write a crash left pending. Real files in tmp_path, no HTTP."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from mediasync.config import PromptConfig
from mediasync.local import sidecar
from mediasync.outputs import formats, xmp
from mediasync.rules import steps
from mediasync.rules.rows import Desired, OutputRow

XMP_SPEC = PromptConfig(kinds=("image",), prompt="Caption.", sidecar=".xmp", format="xmp")


def _want(target: Path) -> Desired:
    return Desired(suffix=".xmp", prompt="Caption.", model="m", prompt_hash="h",
                   sidecar=str(target), spec=XMP_SPEC)


def _bounded(fn: Any, *args: Any, fifo: Path | None = None) -> Any:
    """``fn(*args)`` in a thread; a call that hangs fails the test instead of the run."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn(*args)
        except BaseException as e:  # handed to the test
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(5)
    if t.is_alive():
        if fifo is not None:  # a writer lets the stuck open() return
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"{getattr(fn, '__name__', fn)} blocked on {args}")
    if "error" in out:
        raise out["error"]
    return out["value"]


def _render(target: Path) -> formats.Rendered:
    request = formats.Request("p", None, None, None, str(target.with_name("photo.jpg")))
    return formats.render(_want(target), "", {"caption": "c"}, request, None)


# -- finding 1: only a regular file is read --------------------------------------
def test_a_fifo_named_like_the_xmp_sidecar_is_foreign_and_never_blocks(tmp_path):
    fifo = tmp_path / "photo.jpg.xmp"
    os.mkfifo(fifo)
    assert _bounded(formats.xmp_state, fifo, None, fifo=fifo) == ("foreign", None)
    with pytest.raises(formats.Refused, match="not a regular file"):
        _bounded(_render, fifo, fifo=fifo)


def test_a_directory_named_like_the_xmp_sidecar_is_foreign_not_a_traceback(tmp_path):
    d = tmp_path / "photo.jpg.xmp"
    d.mkdir()
    assert formats.xmp_state(d, None) == ("foreign", None)
    with pytest.raises(formats.Refused, match="not a regular file"):
        _render(d)


def test_the_shared_reader_refuses_what_is_not_a_regular_file(tmp_path):
    fifo, d, link = tmp_path / "f", tmp_path / "d", tmp_path / "l"
    os.mkfifo(fifo)
    d.mkdir()
    (tmp_path / "real").write_bytes(b"x")
    link.symlink_to(tmp_path / "real")
    for p in (fifo, d):
        with pytest.raises(sidecar.NotRegularFile):
            _bounded(sidecar.read_regular, p, fifo=fifo)
    with pytest.raises(OSError):
        sidecar.read_regular(link)  # never read through
    assert sidecar.read_regular(tmp_path / "real") == b"x"
    assert sidecar.read_regular(tmp_path / "missing") is None
    # What inspect sees between its lstat and its open: a FIFO swapped in is not ours.
    assert sidecar.inspect(fifo, None) == "foreign"


# -- finding 2: a write a crash left pending --------------------------------------
def _row(target: Path, outcome: str, pending: str | None) -> OutputRow:
    return OutputRow(str(target.with_name("photo.jpg")), ".xmp", "sha", "h", "m", str(target),
                     None, pending, outcome, None, 0, 0, None, 0, 0.0)


def test_a_pending_xmp_write_is_current_only_when_its_bytes_are_there(tmp_path):
    target = tmp_path / "photo.jpg.xmp"
    theirs = xmp.EMPTY.replace('x:xmptk="mediasync"', 'x:xmptk="darktable"').encode()
    ours = xmp.merge(theirs, xmp.Fields("Ours.", ()), "photo.jpg").text.encode()
    target.write_bytes(theirs)
    pending = _row(target, "writing", sidecar.text_hash(ours))
    # Killed before the rename: darktable's file lacks our fields; merge into it again.
    assert formats.xmp_state(target, pending) == ("stale", sidecar.text_hash(theirs))
    assert steps.output_step(pending, _want(target), "sha", "stale", 0.0) == "generate"
    target.write_bytes(ours)  # killed after it: the pending bytes are current
    assert formats.xmp_state(target, pending) == ("ours", sidecar.text_hash(ours))
    # Without a pending write any XMP there is ours to merge into.
    assert formats.xmp_state(target, _row(target, "written", None))[0] == "ours"


def test_an_xmp_naming_its_source_by_a_name_no_file_can_have_is_no_ones(tmp_path):
    # A source mark edited by hand to hold a "/": no file beside it has that name, so
    # the sidecar holds no other file's fields (it was a traceback: Path.with_name).
    target = tmp_path / "photo.xmp"
    target.write_text(xmp.merge(None, xmp.Fields("c"), "a/b.jpg").text)
    assert formats.check_xmp(_want(target), tmp_path / "photo.jpg") == target.read_bytes()
