"""Which files a scan found are at rest (``rules/rest.py``): their rows read in one
pass over the store, their sidecars looked for in one call per folder, so that a
scan queues only the files the reconciler has a step for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mediasync.engine.context import Context
from mediasync.local.folderio import FolderUnavailable
from mediasync.local.scan import missing
from mediasync.rules import desired, rest
from mediasync.rules.rows import LocalFacts

# Looking for every sidecar of a large share at once may take long; a hung share
# must still end it (as a walk, folders.WALK_TIMEOUT).
CHECK_TIMEOUT = 1800.0


class Rest:
    def __init__(self, ctx: Context, *, quiet: Callable[[str], bool]) -> None:
        """``quiet(path)``: nothing is under way for the path (it is neither queued nor
        being reconciled, and no watcher event or settle wait of it is pending)."""
        self._ctx = ctx
        self._quiet = quiet

    async def settled(self, found: Mapping[str, LocalFacts]) -> set[str]:
        """The paths of ``found`` (with the stat the scan took) that are at rest: the
        reconciler would take no step for them now."""
        ctx = self._ctx
        config = ctx.config
        now, model = ctx.clock(), config.api.model
        settle, renew_before = config.daemon.settle, config.daemon.renew_before
        by_folder: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for row, content, outputs in ctx.store.live_files():
            facts = found.get(row.path)
            if facts is None or not self._quiet(row.path):
                continue
            folder = config.folder_for(row.path)
            if folder is None:
                continue
            wants = (desired.desired(folder, row.path, row.kind, model)
                     if row.sha256 and not row.problem else [])
            sidecars = rest.at_rest(facts, row, content, outputs, wants, now=now,
                                    settle=settle, renew_before=renew_before,
                                    kept_alive=config.keeps_alive_in(folder))
            if sidecars is not None:
                by_folder.setdefault(str(folder.path), []).append((row.path, sidecars))
        resting: set[str] = set()
        for key, files in by_folder.items():
            try:
                gone = await ctx.fs.call(key, missing, [s for _, names in files for s in names],
                                         timeout=CHECK_TIMEOUT)
            except (FolderUnavailable, OSError):
                continue  # the reconciler looks at each of them
            resting.update(path for path, names in files if gone.isdisjoint(names))
        # One queued, changed or being reconciled meanwhile is the reconciler's.
        return {p for p in resting if self._quiet(p)}
