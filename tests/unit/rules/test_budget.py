"""The storage budget's plan (rules/budget.py): which copies are kept alive, which
make room first. Pure: holdings in, a set of contents out."""

from __future__ import annotations

from pathlib import Path

from mediasync.config import parse_config
from mediasync.rules import budget, desired
from mediasync.rules.budget import Holding
from mediasync.rules.rows import OutputRow, PathRow

MB = 1_000_000


def h(sha: str, size: int = MB, *, needed: bool = False, pinned: bool = False,
      newest: int = 0, wanted: bool = True) -> Holding:
    return Holding(sha, size, needed, pinned, newest, wanted)


def test_newest_first_within_the_budget_with_room_for_one_renewal():
    lib = [h(f"c{i}", newest=i) for i in range(10)]
    # 5 MB: four copies plus a renewal's second copy of the largest (1 MB) fit.
    assert budget.plan(lib, 5 * MB, "newest") == {"c9", "c8", "c7", "c6"}
    assert budget.plan(lib, 5 * MB, "oldest") == {"c0", "c1", "c2", "c3"}
    assert budget.plan(lib, 11 * MB, "newest") == {f"c{i}" for i in range(10)}
    assert budget.plan(lib, MB, "newest") == frozenset()  # not even room to renew one


def test_outputs_to_make_first_then_pinned_then_the_rule():
    lib = [h("new", newest=9), h("pinned", pinned=True, newest=1),
           h("todo", needed=True, newest=0), h("old", newest=2)]
    assert budget.plan(lib, 3 * MB, "newest") == {"todo", "pinned"}
    assert budget.plan(lib, 4 * MB, "newest") == {"todo", "pinned", "new"}


def test_one_that_does_not_fit_is_passed_over_for_smaller_ones():
    lib = [h("big", 4 * MB, newest=9), h("a", newest=5), h("b", newest=4)]
    assert budget.plan(lib, 6 * MB, "newest") == {"a", "b"}  # 4 + 4 > 6; 1 + 1 + 1 ≤ 6
    assert budget.plan(lib, 6 * MB, "smallest") == {"a", "b"}
    assert budget.plan(lib, 9 * MB, "newest") == {"big", "a"}  # 4 + 1 + 4; b would need 10


def test_on_use_contents_are_never_kept_and_go_first_when_room_is_needed():
    lib = [h("kept", newest=5), h("lapsing", newest=9, wanted=False), h("older", newest=1)]
    kept = budget.plan(lib, 2 * MB, "newest")
    assert kept == {"kept"}
    assert budget.evict_order(lib, kept, "newest", 2 * MB) == ["older", "lapsing"]


def test_eviction_takes_the_least_important_first_and_never_a_kept_copy():
    lib = [h("todo", needed=True), h("pin", pinned=True, newest=1), h("a", newest=3),
           h("b", newest=2)]
    assert budget.evict_order(lib, frozenset({"a"}), "newest", MB) == ["b", "pin", "todo"]


def test_the_copies_kept_once_all_is_written_make_room_last():
    # While others still need copies, the newest (done) is outside the plan; it is the
    # one the plan keeps once they are written, so it goes last: never uploaded twice.
    lib = [h("new", newest=9), h("old", newest=1), h("t1", needed=True), h("t2", needed=True)]
    kept = budget.plan(lib, 3 * MB, "newest")
    assert kept == {"t1", "t2"}
    assert budget.evict_order(lib, kept, "newest", 3 * MB) == ["old", "new"]


def test_what_other_uploads_hold_comes_off_the_budget():
    assert budget.effective(18 * MB, 20 * MB, 0) == 18 * MB
    assert budget.effective(18 * MB, 20 * MB, 5 * MB) == 15 * MB
    assert budget.effective(18 * MB, 20 * MB, 30 * MB) == 0


def _row(path: str, sha: str, mtime: int, size: int = MB, gone_at: float | None = None
         ) -> PathRow:
    return PathRow(path=path, folder=str(Path(path).parent), size=size, mtime_ns=mtime,
                   inode=1, sha256=sha, kind="image", mime="image/png", problem=None,
                   gone_at=gone_at, updated_at=0.0)


def test_holdings_from_the_store_rows_and_the_config(tmp_path):
    config = parse_config({"folders": [
        {"path": str(tmp_path / "a"), "pinned": True},
        {"path": str(tmp_path / "b"), "keep_alive": "on_use"}]})
    a, b = str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "y.png")
    want = desired.desired(config.folders[0], a, "image", "gemini-2.5-flash")[0]
    done = OutputRow(a, want.suffix, "s1", want.prompt_hash, want.model, want.sidecar, "h",
                     None, "written", None, 0, 0, None, 0, 0.0)
    rows = [_row(a, "s1", 5), _row(b, "s2", 7), _row(b + "2", "s1", 9),
            _row(str(tmp_path / "a" / "gone.png"), "s3", 1, gone_at=3.0)]
    hs = {x.sha: x for x in budget.holdings(rows, {a: {want.suffix: done}}, config)}
    assert set(hs) == {"s1", "s2"}  # a gone path holds nothing
    # s1: in a pinned folder (a) and in an on_use one (b), where it has nothing written.
    assert hs["s1"] == Holding("s1", MB, needed=True, pinned=True, newest=9, wanted=True)
    assert hs["s2"] == Holding("s2", MB, needed=True, pinned=False, newest=7, wanted=False)
