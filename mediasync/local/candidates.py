"""Which paths are candidates for mirroring. Pure string/path logic, no filesystem access.

The watcher and the scanner both ask here, so a file that one skips the
other skips too. Our own output (sidecars, temp files) must never be a
candidate, or mediasync would loop on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import PurePath, PurePosixPath

from mediasync.config import FolderConfig
from mediasync.media.formats import MediaType, media_type

from .sidecar import TEMP_PREFIX

# NAS, OS, sync-tool and VCS metadata folders. Compared case-insensitively:
# Windows and SMB shares spell "$RECYCLE.BIN" in several ways.
IGNORED_DIR_NAMES: frozenset[str] = frozenset(
    n.casefold()
    for n in (
        "@eaDir",  # Synology thumbnails
        "#recycle",  # Synology recycle bin
        "#snapshot",  # Synology snapshots
        "@Recycle",  # QNAP
        "@Recently-Snapshot",  # QNAP
        "@tmp",
        ".@__thumb",  # QNAP thumbnails
        ".stfolder",  # Syncthing
        ".stversions",
        ".Trashes",  # macOS
        ".Spotlight-V100",
        ".fseventsd",
        ".TemporaryItems",
        ".DocumentRevisions-V100",
        ".AppleDouble",
        ".AppleDB",
        "__MACOSX",
        "$RECYCLE.BIN",  # Windows
        "System Volume Information",
        "lost+found",
        ".git",
        ".hg",
        ".svn",
        ".snapshot",  # NetApp and others
        "~snapshot",
        ".sync",  # Resilio
        ".dropbox.cache",
        ".thumbnails",
    )
)

# Downloads, editors and copy tools still writing; lower case.
PARTIAL_SUFFIXES: tuple[str, ...] = (
    ".part",
    ".crdownload",
    ".tmp",
    ".partial",
    ".download",
    ".swp",
    ".swx",
    ".filepart",  # WinSCP
    ".!qb",  # qBittorrent
    ".!ut",  # µTorrent
    ".opdownload",
    ".aria2",
)


def ignored_dir(name: str) -> bool:
    """A directory never descended into: metadata folders and any dot-directory."""
    return not name or name.startswith(".") or name.casefold() in IGNORED_DIR_NAMES


def ignored_name(name: str, sidecar_suffixes: Iterable[str]) -> bool:
    """A file name never considered: dotfiles (our temp files too), partial
    downloads, editor/lock files (~*) and our own sidecars."""
    if not name or name.startswith((".", "~", TEMP_PREFIX)):
        return True
    if name.lower().endswith(PARTIAL_SUFFIXES):
        return True
    return any(name.endswith(s) for s in sidecar_suffixes if s)


def _matches(patterns: Iterable[str], rel: PurePosixPath) -> bool:
    # Case-insensitive like the extension table: "*.jpg" also means IMG_0001.JPG.
    path = rel.as_posix().casefold()
    parts = [p.casefold() for p in rel.parts]
    # The file and each folder above it, as a relative path and as a bare name,
    # so that "Private" or "drafts/*" exclude a whole subfolder (as in .gitignore).
    subjects = {path, parts[-1]}
    for i in range(1, len(parts)):
        subjects.add("/".join(parts[:i]))
        subjects.add(parts[i - 1])
    for pattern in patterns:
        pat = pattern.casefold().rstrip("/")
        alts = [pat]
        while pat.startswith("**/"):  # "**/x" also matches "x" at the top
            pat = pat[3:]
            alts.append(pat)
        alts = [a.replace("**", "*") for a in alts if a]
        if any(fnmatchcase(s, a) for s in subjects for a in alts):
            return True
    return False


def is_candidate(rel: PurePath, folder: FolderConfig,
                 sidecar_suffixes: Iterable[str]) -> MediaType | None:
    """The media type of ``rel`` (relative to ``folder.path``) if it should be mirrored."""
    rel = PurePosixPath(PurePath(rel).as_posix())
    parts = rel.parts
    if not parts or rel.is_absolute() or ".." in parts:
        return None
    *dirs, name = parts
    if dirs and not folder.recursive:
        return None
    if any(ignored_dir(d) for d in dirs):
        return None
    mt = name_candidate(name, sidecar_suffixes)
    if mt is None:
        return None
    if folder.include and not _matches(folder.include, rel):
        return None
    if folder.exclude and _matches(folder.exclude, rel):
        return None
    return mt


def name_candidate(name: str, sidecar_suffixes: Iterable[str]) -> MediaType | None:
    """What ``is_candidate`` asks of the file name alone: all it asks of a file in a
    directory a walk descended into (no ignored folder above it) when its folder has
    no include or exclude patterns."""
    if ignored_name(name, sidecar_suffixes):
        return None
    return media_type(name)
