"""The next step: (local facts, store rows, now) → what the reconciler does.

Pure: nothing here reads a clock, a file or the network; the engine passes all of
it in, so every rule of the reconciler is testable in microseconds. The states
themselves are decoded in :mod:`mediasync.rules.states`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from mediasync.media.formats import MAX_FILE_BYTES
from mediasync.rules.rows import ContentRow, Desired, LocalFacts, OutputRow
from mediasync.rules.states import Copy, Output, copy_state, output_state
from mediasync.rules.units import human_bytes


def settle_wait(
    facts: LocalFacts,
    previous: LocalFacts | None,
    last_event: float | None,
    now_wall: float,
    now_mono: float,
    settle: float,
) -> float:
    """Seconds to wait before the file counts as still; 0 when it may be taken now.

    A file is still when nothing touched it for ``settle``: its mtime is that old
    (every write moves it) and no watcher event arrived since. A file whose stat
    changed since we last looked is not still whatever its mtime says. An mtime in
    the future (exFAT cards keep local time, a camera's clock is wrong) would be
    waited for for hours or years: there a stat unchanged across our own wait of
    ``settle`` (``previous == facts``) is the proof instead.
    """
    if previous is not None and previous != facts:
        return settle
    age = now_wall - facts.mtime_ns / 1e9
    if age < 0:
        wait = 0.0 if previous is not None else settle
    else:
        wait = settle - age
    if last_event is not None:
        wait = max(wait, settle - (now_mono - last_event))
    return max(0.0, wait)


# A file that could not be read: a transient problem (permissions, I/O), unlike the
# verdicts of local_problem on the file's own bytes.
READ_PROBLEM = "cannot read it"
# A file mediasync chose not to mirror (a symbolic link not followed): said in
# `status`, but no failure of the pass.
SKIPPED = "skipped: "


def local_problem(size: int, *, proxied: bool = False) -> str | None:
    """Why a file cannot be mirrored at all, or None. ``proxied``: a file over the
    service's limit may go as an upload proxy (media/proxy.py)."""
    if size == 0:
        return "empty file (0 bytes): nothing to upload"
    if size > MAX_FILE_BYTES and not proxied:
        return (
            f"too large: {human_bytes(size)}; the File API takes at most "
            f"{human_bytes(MAX_FILE_BYTES)} per file"
        )
    return None


RemoteStep = Literal["ready", "renew", "upload", "resume", "poll", "wait", "failed"]


_REMOTE_STEP: dict[Copy, RemoteStep] = {
    Copy.NONE: "upload",
    Copy.EXPIRED: "upload",
    Copy.UPLOADING: "resume",
    Copy.PROCESSING: "poll",
    Copy.SERVING: "ready",
    Copy.RENEWING: "renew",  # the current copy serves while a fresh one is made
    Copy.WAITING: "wait",
    Copy.FAILED: "failed",
}


def remote_step(c: ContentRow, now: float, renew_before: float) -> RemoteStep:
    """What the remote copy of a content needs next (states.copy_state decides)."""
    return _REMOTE_STEP[copy_state(c, now, renew_before)]


# stale: ours, but the answer before the one a crash left pending (issue 8, row 1).
SidecarState = Literal["missing", "ours", "stale", "edited", "foreign"]


# confirm: the pending write is on disk; record it as written.
OutputStep = Literal["skip", "generate", "keep_edit", "wait", "confirm"]


def output_step(
    row: OutputRow | None, want: Desired, sha256: str, sidecar: SidecarState, now: float
) -> OutputStep:
    """Whether a sidecar needs generating.

    A sidecar its owner edited, or one we never wrote, is never overwritten. One we
    wrote is regenerated when the content, the prompt or the model changes, or when
    it was deleted.
    """
    state = output_state(row, want, sha256)
    if sidecar == "stale":
        return "generate"
    if sidecar in ("edited", "foreign"):
        return "skip" if state is Output.KEPT_EDIT else "keep_edit"
    if state in (Output.MISSING, Output.STALE):
        return "generate"
    if state is Output.WRITING:
        return "confirm" if sidecar == "ours" else "generate"
    if state in (Output.WRITTEN, Output.KEPT_EDIT):
        return "skip" if sidecar == "ours" else "generate"
    if state is Output.WAITING:
        assert row is not None and row.retry_at is not None
        return "wait" if row.retry_at > now else "generate"
    # Blocked, or refused for these bytes: an outcome, not a retry loop; it waits
    # for the file, the prompt or the model to change.
    return "skip"


def removable(gone_at: Mapping[str, float], now: float, grace: float) -> list[str]:
    """Vanished paths old enough that they were not a rename in progress."""
    return sorted(p for p, t in gone_at.items() if now - t >= grace)
