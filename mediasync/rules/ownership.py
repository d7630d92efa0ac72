"""Which remote files are ours (their display names), and the remote listing
reconciled with the database: vanished copies, new expiries, leftovers to delete. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mediasync.rules.naming import shown
from mediasync.rules.rows import ContentRow, CopyRef

DISPLAY_PREFIX = "mediasync:"


# An unknown remote file of ours younger than this may belong to an upload whose
# finalize answer we have not recorded yet; leave it for the next refresh.
ORPHAN_GRACE_SECONDS = 600.0


def display_name(sha256: str, file_name: str, instance: str | None = None) -> str:
    """Marks the remote file as ours (we only ever delete our own) and names it for humans.

    ``mediasync:<instance>:<sha16>:<name>``: the instance id tells apart two state
    directories sharing one API key. Without one (the old form) it is
    ``mediasync:<sha16>:<name>``.
    """
    owner = f"{instance}:" if instance else ""
    # A name that is not UTF-8 cannot go into JSON as it is: escaped (\\xe9).
    return f"{DISPLAY_PREFIX}{owner}{sha256[:16]}:{shown(file_name)}"[:512]


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


def store_usage(listing: Iterable[tuple[str, str | None, int]], known_names: set[str],
                instance: str | None) -> dict[str, int]:
    """Bytes in the project's store by owner, from the listing's (name, display name,
    size): ``mine`` (recorded by this instance, or named with its id), ``other_instances``
    (other mediasync instances on the key: ``mediasync:<other>:…``, or the old form
    nobody here recorded) and ``other_uploads`` (every other program's)."""
    out = {"mine": 0, "other_instances": 0, "other_uploads": 0}
    for name, display, size in listing:
        owner = owner_of(display)
        if name in known_names or (owner is not None and instance and owner[0] == instance):
            out["mine"] += size
        elif owner is not None:
            out["other_instances"] += size
        else:
            out["other_uploads"] += size
    return out


@dataclass(frozen=True, slots=True)  # 100,000 of them in a refresh of a large library
class RemoteListing:
    name: str
    display_name: str | None
    create_time: float | None
    expires_at: float | None
    sha256: str | None = None  # hex, from sha256Hash, when it could be read
    state: str | None = None
    uri: str | None = None
    size: int | None = None

    def holds(self, sha256: str, size: int) -> bool:
        """This copy holds that content: its full hash where the service gave one,
        else the display name's sha16 and the size (a rebuilt database adopts it)."""
        if self.sha256 is not None:
            return self.sha256 == sha256
        owner = owner_of(self.display_name)
        return owner is not None and owner[1] == sha256[:16] and self.size in (None, size)


@dataclass(frozen=True)
class RefreshPlan:
    vanished: tuple[str, ...]  # contents whose live copy is gone: upload again
    expiries: tuple[tuple[str, float], ...]  # (sha256, server expiration) to record
    delete: tuple[str, ...]  # remote files of ours that nothing refers to
    # While a rebuilt database is matched again: live copies of ours it does not know
    # yet, by sha16, for a file that needs one to adopt instead of uploading again
    adoptable: tuple[RemoteListing, ...] = ()


def plan_refresh(
    listing: Iterable[RemoteListing],
    contents: Sequence[ContentRow | CopyRef],
    known_names: set[str],
    uploading_prefixes: set[str],
    now: float,
    instance: str | None = None,
    *,
    rebuilding: bool = False,
) -> RefreshPlan:
    """Reconcile the remote listing with the database (the server is the truth).

    Only this instance's leftovers are deleted. A leftover in the old name form
    (no instance id) may be another instance's, so it is left to expire on its
    own (48 h); the copies this instance recorded are deleted by name anyway.

    ``rebuilding``: the database was rebuilt and has not met every file yet, so a
    copy of ours it does not know is no leftover but adoptable, unless the content
    it holds has a live copy recorded already (then it is a spare, deleted).
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
    live: dict[str, list[ContentRow | CopyRef]] = {}  # by sha16: contents with a recorded copy
    for c in contents:
        if c.remote_name:
            live.setdefault(c.sha256[:16], []).append(c)
    delete, adoptable = [], []
    for f in by_name.values():
        owner = owner_of(f.display_name)
        if owner is None or f.name in known_names or owner[1] in uploading_prefixes:
            continue
        if instance is not None and owner[0] != instance:
            continue  # another instance's, or an old-form name whose owner is unknown
        spare = any(f.holds(c.sha256, c.size) for c in live.get(owner[1], ()))
        if rebuilding and not spare:
            if f.state == "ACTIVE" and f.expires_at is not None:
                adoptable.append(f)
            continue
        if f.create_time is not None and now - f.create_time < ORPHAN_GRACE_SECONDS:
            continue
        delete.append(f.name)
    return RefreshPlan(tuple(vanished), tuple(expiries), tuple(sorted(delete)),
                       tuple(adoptable))
