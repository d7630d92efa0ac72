"""The store is a budget, not a promise: which remote copies to keep alive. Pure.

The project's store (20 GiB) holds far less than a real library. Within the
storage budget (``[daemon] storage_budget``), the copies that matter most are kept
alive (renewed before they expire): first those of files with outputs still to
make, then pinned folders' (``pinned = true``), then by ``keep_first``. Every other
copy lapses once its outputs are written, as under ``keep_alive = "on_use"``, and is
uploaded again when a prompt needs it; when room is needed, the copies that matter
least go first (:func:`evict_order`).

The plan leaves room for one renewal: a renewal holds a second copy of a content
until the fresh one is ACTIVE and the old one deleted, so the kept copies plus the
largest of them fit the budget (:func:`plan`), and renewals always fit, one at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from mediasync.config import Config
from mediasync.media.formats import MAX_PROJECT_BYTES
from mediasync.rules import desired
from mediasync.rules.rows import OutputRow, PathRow
from mediasync.rules.states import Output, output_state

# What an output in these states still needs: a generation, hence a remote copy.
_TO_MAKE = frozenset({Output.MISSING, Output.STALE, Output.WRITING, Output.WAITING})


@dataclass(frozen=True)
class Holding:
    """One content as the budget sees it."""

    sha: str
    size: int
    needed: bool  # a file of it has an output still to make
    pinned: bool  # a file of it is in a pinned folder
    newest: int  # the newest modification time of its files (ns)
    wanted: bool = True  # a file of it is in a keep_alive = "always" folder


def rank(h: Holding, order: str) -> tuple[bool, bool, float, str]:
    """Sort key, most important first: outputs to make, pinned, then ``order``."""
    if order == "oldest":
        key: float = h.newest
    elif order == "smallest":
        key = h.size
    else:  # newest
        key = -h.newest
    return (not h.needed, not h.pinned, key, h.sha)


def plan(holdings: Iterable[Holding], budget: int, order: str) -> frozenset[str]:
    """The contents whose copies are kept alive: most important first, each taken
    while the kept bytes plus the largest kept copy (a renewal's second copy) fit
    ``budget``. One that does not fit is passed over, a smaller one after it may fit.
    Contents of ``keep_alive = "on_use"`` folders only are never kept."""
    kept: list[str] = []
    total = largest = 0
    for h in sorted((h for h in holdings if h.wanted), key=lambda h: rank(h, order)):
        big = max(largest, h.size)
        if total + h.size + big <= budget:
            kept.append(h.sha)
            total, largest = total + h.size, big
    return frozenset(kept)


def evict_order(holdings: Iterable[Holding], kept: frozenset[str], order: str,
                budget: int) -> list[str]:
    """The copies to delete when room is needed, first to last: those outside the
    plan, least important first; kept copies never. Last of all, the copies the plan
    will keep once every output is written (a file done now was needed before: its
    copy would only be uploaded again)."""
    holdings = list(holdings)
    settled = plan((replace(h, needed=False) for h in holdings), budget, order)
    out = [h for h in holdings if h.sha not in kept]
    return [h.sha for h in sorted(out, key=lambda h: (h.sha not in settled, rank(h, order)),
                                  reverse=True)]


def store_size(learned: Mapping[str, object]) -> int:
    """The project's store: as a full-store answer named it (meta ``store_size``), else
    the documented 20 GiB."""
    size = learned.get("bytes")
    return size if isinstance(size, int) and size > 0 else MAX_PROJECT_BYTES


def others_bytes(usage: Mapping[str, object]) -> int:
    """What other uploads on the key hold (other instances, other programs), as the last
    listing showed (meta ``store_usage``) or a full store made us estimate."""
    return sum(v for k in ("other_instances", "other_uploads")
               if isinstance(v := usage.get(k), int) and v > 0)


def limit(config: Config, learned: Mapping[str, object], usage: Mapping[str, object]) -> int:
    """The bytes this instance may hold now: its budget of the store as known."""
    size = store_size(learned)
    return effective(config.daemon.storage_budget.of(size), size, others_bytes(usage))


def effective(budget: int, store: int, others: int) -> int:
    """Bytes this instance may hold: its budget, within what other uploads on the key
    (other mediasync instances, other programs) leave of the store."""
    return max(0, min(budget, store - others))


def holdings(
    paths: Iterable[PathRow],
    outputs: Mapping[str, Mapping[str, OutputRow]],
    config: Config,
) -> list[Holding]:
    """Every content of the live paths, with what the plan weighs: whether some file
    of it has an output still to make, is pinned, how new it is, and whether its
    folder keeps copies alive at all."""
    by_sha: dict[str, Holding] = {}
    model = config.api.model
    for row in paths:
        if row.gone_at is not None or not row.sha256 or row.problem:
            continue
        folder = config.folder_for(Path(row.path))
        if folder is None:
            continue
        mine = outputs.get(row.path, {})
        needed = any(
            output_state(mine.get(w.suffix), w, row.sha256) in _TO_MAKE
            for w in desired.desired(folder, row.path, row.kind, model)
        )
        h = Holding(row.sha256, row.size, needed, folder.pinned, row.mtime_ns,
                    config.keeps_alive(Path(row.path)))
        old = by_sha.get(row.sha256)
        if old is not None:  # the same bytes in several places: the most important
            h = Holding(h.sha, max(h.size, old.size), h.needed or old.needed,
                        h.pinned or old.pinned, max(h.newest, old.newest), h.wanted or old.wanted)
        by_sha[row.sha256] = h
    return list(by_sha.values())


def kept(
    paths: Iterable[PathRow],
    outputs: Mapping[str, Mapping[str, OutputRow]],
    config: Config,
    limit: int,
) -> tuple[frozenset[str] | None, list[Holding]]:
    """(the contents kept alive, or None when the whole library fits; the holdings)."""
    hs = holdings(paths, outputs, config)
    if sum(h.size for h in hs) + max((h.size for h in hs), default=0) <= limit:
        return None, hs
    return plan(hs, limit, config.daemon.keep_first), hs
