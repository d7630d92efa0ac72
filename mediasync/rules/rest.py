"""A file at rest: one the reconciler would take no step for. Pure.

A scan queued every file it found, and the reconciler then read each one's rows,
looked at its sidecars in the folder's threads and found nothing to do: over a
library of 100,000 synced files that was most of a no-op `sync` and of every
periodic rescan. The scan asks this instead, with the rows the steps read and the
stat it took, and queues only the files that are not at rest.

This must say "not at rest" whenever the reconciler would take a step
(`engine/reconcile.py`: settle, identify, the remote copy, each output; a step here
is anything that writes the store, calls the service or touches a file), so it
accepts only the plainest case and leaves the rest to the reconciler.
`tests/integration/test_scan_rest.py` runs the reconciler on files this calls at rest and
checks that it does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mediasync.rules import steps
from mediasync.rules.rows import ContentRow, Desired, LocalFacts, Outcome, OutputRow, PathRow
from mediasync.rules.states import is_current

_DONE = (Outcome.WRITTEN, Outcome.KEPT_EDIT)


def at_rest(
    facts: LocalFacts,
    row: PathRow | None,
    content: ContentRow | None,
    outputs: Mapping[str, OutputRow],
    wants: Sequence[Desired],
    *,
    now: float,
    settle: float,
    renew_before: float,
    kept_alive: bool,
) -> tuple[str, ...] | None:
    """None when the reconciler has a step to take for this file; else the sidecars
    that must exist for it to have none (it looks for each one).

    ``facts``: the scan's stat; ``row``, ``content``, ``outputs``: the file's rows;
    ``wants``: ``desired.desired`` for it (its recorded kind); ``kept_alive``: its
    folder keeps copies alive. The caller makes sure that no watcher event or settle
    wait of the file is pending and that it is neither queued nor being reconciled.
    """
    # Settle.wait with nothing seen before: still for `settle` by its mtime.
    if steps.settle_wait(facts, None, None, now, 0.0, settle) > 0:
        return None
    # Identifier.identify: the recorded stat, a hash or a verdict; nothing to read.
    if row is None or row.gone_at is not None:
        return None
    if (row.size, row.mtime_ns, row.inode) != (facts.size, facts.mtime_ns, facts.inode):
        return None
    if row.problem:
        # A verdict on the bytes ends the reconciler's pass; an unreadable file is
        # read again.
        return None if row.problem.startswith(steps.READ_PROBLEM) else ()
    sha = row.sha256
    if not sha:
        return None
    # Mirror.ensure: a serving copy, nothing to renew (keep_alive = "on_use" makes none).
    if kept_alive and (content is None or content.sha256 != sha
                       or steps.remote_step(content, now, renew_before) != "ready"):
        return None
    # Producer.output's fast path for each output: written or kept, for these bytes,
    # prompt, model and name, and (the caller looks) its sidecar there.
    sidecars = []
    for want in wants:
        out = outputs.get(want.suffix)
        if out is None or out.outcome not in _DONE or not is_current(out, want, sha):
            return None
        sidecars.append(want.sidecar)
    return tuple(sidecars)
