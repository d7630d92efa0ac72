"""Whether a watched folder, or a disk mounted inside one, can be looked at now
(docs/architecture.md, "Folders that go away"). Pure: the caller gathers
devices and the mount table.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping


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
