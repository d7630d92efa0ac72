"""rules/rest.at_rest: a file is at rest only when every step of the reconciler would
find nothing to do; each condition on its own makes it not at rest."""

from __future__ import annotations

import dataclasses

import pytest

from mediasync.rules.rest import at_rest
from mediasync.rules.rows import Desired, LocalFacts, PathRow
from mediasync.rules.steps import READ_PROBLEM
from tests.helpers import content_row, output_row

NOW = 1_700_000_000.0
SHA = "s"
FACTS = LocalFacts(size=10, mtime_ns=int((NOW - 3600) * 1e9), inode=7)
WANTS = [Desired(".caption.md", "p", "m", "h1", "/f/a.png.caption.md"),
         Desired(".xmp", "q", "m", "h2", "/f/a.png.xmp")]
ROW = PathRow("/f/a.png", "/f", FACTS.size, FACTS.mtime_ns, FACTS.inode, SHA, "image",
              "image/png", None, None, 0.0)
SERVING = content_row(sha256=SHA, remote_name="files/x", uri="u", expires_at=NOW + 40 * 3600)
OUTPUTS = {w.suffix: output_row(w, sha256=SHA) for w in WANTS}


def _rest(facts=FACTS, row=ROW, content=SERVING, outputs=OUTPUTS, wants=WANTS, *,
          now=NOW, settle=2.0, kept_alive=True):
    return at_rest(facts, row, content, outputs, wants, now=now, settle=settle,
                   renew_before=6 * 3600, kept_alive=kept_alive)


def test_a_synced_file_is_at_rest_once_its_sidecars_are_there():
    assert _rest() == ("/f/a.png.caption.md", "/f/a.png.xmp")
    assert _rest(wants=[]) == ()  # no prompt for its kind
    kept = {**OUTPUTS, ".xmp": dataclasses.replace(OUTPUTS[".xmp"], outcome="kept_edit")}
    assert _rest(outputs=kept) is not None


@pytest.mark.parametrize("case", [
    "young", "future", "no row", "gone", "size", "mtime", "inode", "no hash", "unreadable",
    "no content", "other content", "expired", "renew", "uploading", "waiting", "output missing",
    "other bytes", "other prompt", "other model", "other sidecar", "writing", "blocked",
    "failed", "waiting output",
])
def test_any_step_left_makes_it_not_at_rest(case):
    o = OUTPUTS[".caption.md"]
    def out(**kw):
        return {**OUTPUTS, ".caption.md": dataclasses.replace(o, **kw)}
    kw = {
        "young": dict(now=FACTS.mtime_ns / 1e9 + 1),
        "future": dict(now=FACTS.mtime_ns / 1e9 - 100),
        "no row": dict(row=None),
        "gone": dict(row=dataclasses.replace(ROW, gone_at=NOW)),
        "size": dict(row=dataclasses.replace(ROW, size=11)),
        "mtime": dict(row=dataclasses.replace(ROW, mtime_ns=1)),
        "inode": dict(row=dataclasses.replace(ROW, inode=8)),
        "no hash": dict(row=dataclasses.replace(ROW, sha256=None)),
        "unreadable": dict(row=dataclasses.replace(ROW, sha256=None,
                                                   problem=f"{READ_PROBLEM}: EACCES")),
        "no content": dict(content=None),
        "other content": dict(content=dataclasses.replace(SERVING, sha256="t")),
        "expired": dict(content=dataclasses.replace(SERVING, expires_at=NOW + 60)),
        "renew": dict(content=dataclasses.replace(SERVING, expires_at=NOW + 3600)),
        "uploading": dict(content=dataclasses.replace(SERVING, next_url="http://u")),
        "waiting": dict(content=content_row(sha256=SHA, error="e", retry_at=NOW + 60)),
        "output missing": dict(outputs={".xmp": OUTPUTS[".xmp"]}),
        "other bytes": dict(outputs=out(sha256="t")),
        "other prompt": dict(outputs=out(prompt_hash="h9")),
        "other model": dict(outputs=out(model="n")),
        "other sidecar": dict(outputs=out(sidecar="/f/b.png.caption.md")),
        "writing": dict(outputs=out(outcome="writing", pending_hash="p")),
        "blocked": dict(outputs=out(outcome="blocked")),
        "failed": dict(outputs=out(outcome="failed")),
        "waiting output": dict(outputs=out(outcome="failed", retry_at=NOW + 60)),
    }[case]
    assert _rest(**kw) is None


def test_a_verdict_on_the_bytes_is_at_rest_and_a_lapsing_copy_is_no_step():
    empty = dataclasses.replace(ROW, sha256=None, problem="empty file (0 bytes)")
    assert _rest(row=empty, content=None, wants=[]) == ()
    # keep_alive = "on_use": no copy is kept, so none is asked for
    assert _rest(content=None, kept_alive=False) is not None
    assert _rest(content=dataclasses.replace(SERVING, expires_at=NOW - 1),
                 kept_alive=False) is not None
    # settle 0: a file stamped just now may be taken at once, as Settle.wait says
    assert _rest(now=FACTS.mtime_ns / 1e9, settle=0.0) is not None
