"""Pure decisions: (local facts, store rows, now, config) → the next step.

Nothing here reads a clock, a file or the network; the engine passes all of it
in. That keeps every rule of the reconciler testable in microseconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mediasync.config import FolderConfig, PromptConfig
from mediasync.media.formats import MAX_FILE_BYTES
from mediasync.rules.naming import output_key, sidecar_for
from mediasync.rules.rows import ContentRow, OutputRow
from mediasync.rules.states import Copy, Output, copy_state, output_state

DISPLAY_PREFIX = "mediasync:"
# An unknown remote file of ours younger than this may belong to an upload whose
# finalize answer we have not recorded yet; leave it for the next refresh.
ORPHAN_GRACE_SECONDS = 600.0


@dataclass(frozen=True)
class LocalFacts:
    size: int
    mtime_ns: int
    inode: int


# -- local files ---------------------------------------------------------------
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


def folder_unavailable(
    dev: int | None,
    parent_dev: int,
    recorded_dev: int | None,
    recorded_mount: str | None = None,
    mounts: frozenset[str] | None = None,
) -> str | None:
    """Why a watched folder cannot be looked at now, or None when its listing is the truth.

    A folder that was its own file system when last seen with files (``recorded_dev``
    differs from its parent's) but now sits on its parent's is an empty mount point:
    its disk or share is unmounted, its files are not deleted. A bind mount of a
    directory on the parent's own file system shares its device, so the mount point
    that held the folder then (``recorded_mount``) must still be in the mount table
    (``mounts``; None when it cannot be read). A folder that was never under a mount
    point, or is mounted again (any other device), is taken as it is.
    """
    if dev is None:
        return "does not exist or is not a directory"
    if recorded_dev is not None and recorded_dev != parent_dev and dev == parent_dev:
        return "is an empty mount point (its file system is not mounted)"
    if recorded_mount is not None and mounts is not None and recorded_mount not in mounts:
        return f"is not mounted ({recorded_mount} is no longer a mount point)"
    return None


def submounts_unavailable(
    folder_real: str,
    recorded: Iterable[str],
    mounts: frozenset[str] | None,
    present: Container[str],
) -> dict[str, str]:
    """Which recorded sub-mounts of a folder cannot be looked at now: relative path → why.

    ``recorded`` are mount points strictly inside the folder (relative to it), each
    once seen holding files; ``folder_real`` is the folder with symlinks resolved, as
    the mount table (``mounts``) names it. One that left the mount table while its
    directory is still there (``present``) is a pulled disk: its files are not
    deleted. One whose directory is gone was removed by its owner. A mount table that
    cannot be read (None) says nothing: all count as available, as in
    ``folder_unavailable``.
    """
    if mounts is None:
        return {}
    away = {}
    for rel in recorded:
        point = f"{folder_real.rstrip('/')}/{rel}"
        if point not in mounts and rel in present:
            away[rel] = f"is not mounted ({point} is no longer a mount point)"
    return away


def record_submounts(
    recorded: Iterable[str], held: Iterable[str], away: Iterable[str]
) -> list[str]:
    """The sub-mounts to remember after a scan with files: those that held a found
    file, and every recorded one that is unavailable now (forgetting it would make
    its files count as deleted on the next scan). One mounted again that holds no
    file, or whose directory is gone, is dropped."""
    return sorted(set(held) | (set(recorded) & set(away)))


def holder(path: str, keys: Iterable[str]) -> str | None:
    """The innermost of ``keys`` (folders, mount points) that is ``path`` or holds it,
    or None. A key that is a prefix of a name (``/media`` of ``/mediax``) holds nothing."""
    best = None
    for key in keys:
        if path == key or path.startswith(key.rstrip("/") + "/"):
            if best is None or len(key) > len(best):
                best = key
    return best


def unavailable_holding(path: str, unavailable: Mapping[str, str]) -> str | None:
    """The innermost unavailable folder or sub-mount (a key of ``unavailable``) that
    is ``path`` or holds it, or None."""
    return holder(path, unavailable)


def local_problem(size: int) -> str | None:
    """Why a file cannot be mirrored at all, or None."""
    if size == 0:
        return "empty file (0 bytes): nothing to upload"
    if size > MAX_FILE_BYTES:
        return (
            f"too large: {human_bytes(size)}; the File API takes at most "
            f"{human_bytes(MAX_FILE_BYTES)} per file"
        )
    return None


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


# -- remote copy ---------------------------------------------------------------
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


def display_name(sha256: str, file_name: str, instance: str | None = None) -> str:
    """Marks the remote file as ours (we only ever delete our own) and names it for humans.

    ``mediasync:<instance>:<sha16>:<name>``: the instance id tells apart two state
    directories sharing one API key. Without one (the old form) it is
    ``mediasync:<sha16>:<name>``.
    """
    owner = f"{instance}:" if instance else ""
    return f"{DISPLAY_PREFIX}{owner}{sha256[:16]}:{file_name}"[:512]


def _is_sha16(s: str) -> bool:
    return len(s) == 16 and all(c in "0123456789abcdef" for c in s)


def owner_of(display: str | None) -> tuple[str | None, str] | None:
    """(instance id or None for the old form, sha256 prefix) of a name of ours, else None."""
    if not display or not display.startswith(DISPLAY_PREFIX):
        return None
    fields = display[len(DISPLAY_PREFIX) :].split(":", 2)
    if _is_sha16(fields[0]):
        return None, fields[0]
    if len(fields) >= 2 and fields[0] and not _is_sha16(fields[0]) and _is_sha16(fields[1]):
        return fields[0], fields[1]
    return None


@dataclass(frozen=True)
class RemoteListing:
    name: str
    display_name: str | None
    create_time: float | None
    expires_at: float | None


@dataclass(frozen=True)
class RefreshPlan:
    vanished: tuple[str, ...]  # contents whose live copy is gone: upload again
    expiries: tuple[tuple[str, float], ...]  # (sha256, server expiration) to record
    delete: tuple[str, ...]  # remote files of ours that nothing refers to


def plan_refresh(
    listing: Iterable[RemoteListing],
    contents: Iterable[ContentRow],
    known_names: set[str],
    uploading_prefixes: set[str],
    now: float,
    instance: str | None = None,
) -> RefreshPlan:
    """Reconcile the remote listing with the database (the server is the truth).

    Only this instance's leftovers are deleted. A leftover in the old name form
    (no instance id) may be another instance's, so it is left to expire on its
    own (48 h); the copies this instance recorded are deleted by name anyway.
    """
    by_name = {f.name: f for f in listing}
    vanished: list[str] = []
    expiries: list[tuple[str, float]] = []
    for c in contents:
        if not c.remote_name:
            continue
        listed = by_name.get(c.remote_name)
        if listed is None:
            vanished.append(c.sha256)
        elif listed.expires_at is not None and listed.expires_at != c.expires_at:
            expiries.append((c.sha256, listed.expires_at))
    delete = []
    for f in by_name.values():
        owner = owner_of(f.display_name)
        if owner is None or f.name in known_names or owner[1] in uploading_prefixes:
            continue
        if instance is not None and owner[0] != instance:
            continue  # another instance's, or an old-form name whose owner is unknown
        if f.create_time is not None and now - f.create_time < ORPHAN_GRACE_SECONDS:
            continue
        delete.append(f.name)
    return RefreshPlan(tuple(vanished), tuple(expiries), tuple(sorted(delete)))


# -- outputs -------------------------------------------------------------------
def prompt_hash(prompt: str, identity: str = "") -> str:
    # identity is "" for a plain text prompt: its hash stays what it always was.
    blob = prompt if not identity else f"{prompt}\0{identity}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Desired:
    suffix: str  # the output's key: its sidecar suffix, "*"-prefixed when named after the stem
    prompt: str
    model: str
    prompt_hash: str
    sidecar: str
    spec: PromptConfig | None = None  # format, schema, system instruction, …
    language: str | None = None
    subformat: str | None = None  # srt or vtt

    @property
    def format(self) -> str:
        return self.spec.format if self.spec else "text"


# stale: ours, but the answer before the one a crash left pending (issue 8, row 1).
SidecarState = Literal["missing", "ours", "stale", "edited", "foreign"]
# confirm: the pending write is on disk; record it as written.
OutputStep = Literal["skip", "generate", "keep_edit", "wait", "confirm"]


def desired(folder: FolderConfig, path: str, kind: str, default_model: str) -> list[Desired]:
    """The outputs a file should have: one per file each prompt of its folder writes
    for its kind (a language, a subtitle format)."""
    out = []
    for p in folder.prompts_for(kind):
        for suffix, language, subformat in p.outputs():
            key = output_key(suffix, p.naming)
            out.append(Desired(
                suffix=key,
                prompt=p.prompt,
                model=p.effective_model(default_model),
                prompt_hash=prompt_hash(p.prompt, _identity(p, language)),
                sidecar=str(sidecar_for(Path(path), key)),
                spec=p,
                language=language,
                subformat=subformat,
            ))
    return out


def _identity(p: PromptConfig, language: str | None) -> str:
    identity = p.identity()
    if language:
        identity += f"\0lang={language}"
    return identity


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


# -- removal -------------------------------------------------------------------
def removable(gone_at: Mapping[str, float], now: float, grace: float) -> list[str]:
    """Vanished paths old enough that they were not a rename in progress."""
    return sorted(p for p, t in gone_at.items() if now - t >= grace)


def status_line(folders: int, states: Mapping[str, int], halted: str | None = None) -> str:
    """The one-line summary for systemd's STATUS= and the log, from `status`'s own
    per-file states (report.counts), so both always agree."""
    busy = states.get("uploading", 0) + states.get("processing", 0)
    line = (
        f"watching {folders} folder{'s' if folders != 1 else ''} · "
        f"{states.get('synced', 0)} synced · {busy} uploading · "
        f"{states.get('pending', 0)} pending · {states.get('waiting', 0)} waiting · "
        f"{states.get('failed', 0)} failed"
    )
    return f"{line} · {halted}" if halted else line
