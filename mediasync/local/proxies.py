"""Upload proxies on disk: ``<state_dir>/proxies/<sha256><suffix>``, never next to
the user's files, within a size cap.

A proxy is encoded under a temporary name (``.tmp-*``) and renamed once complete
and flushed: a crash, or a disk that fills up mid-way, leaves no half-written proxy
that could be uploaded (the temporary file is removed, or swept at the next make).
It is kept for the copy's renewals (a renewal uploads it again, and makes it
again if it is gone); the least recently used go first when the proxies together
pass the cap. Blocking: run in the folder's worker threads (local/folderio.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from mediasync.media import proxy

log = logging.getLogger("mediasync")

CACHE_BYTES = 5 * 1000**3  # what the proxies may take in the state directory, together
STALE_TEMP = 3600.0  # a temporary proxy this old belongs to no encode under way


@dataclass(frozen=True)
class ProxyFile:
    path: str
    size: int
    sha256: str  # of the proxy's own bytes: what the service reports for the upload
    mime: str


class ProxyCache:
    def __init__(self, directory: Path, cap: int = CACHE_BYTES) -> None:
        self.directory = Path(directory)
        self.cap = cap

    def path_for(self, sha: str, spec: proxy.Spec) -> Path:
        return self.directory / f"{sha}{spec.suffix}"

    def get_or_make(self, src: str, sha: str, spec: proxy.Spec) -> ProxyFile:
        """The proxy of ``src`` (whose SHA-256 is ``sha``) as ``spec`` says: the one made
        before, or a new one. Raises proxy.ProxyFailed (the file's bytes) or OSError."""
        final = self.path_for(sha, spec)
        self.directory.mkdir(parents=True, exist_ok=True)
        made = final.with_name(final.name + ".sha256")
        try:
            size, digest = final.stat().st_size, made.read_text().strip()
            if len(digest) == 64:
                os.utime(final)  # recently used: the last to go when over the cap
                return ProxyFile(str(final), size, digest, spec.mime)
        except (FileNotFoundError, ValueError):
            pass
        self.sweep_temps()
        tmp = self.directory / f".tmp-{secrets.token_hex(6)}{spec.suffix}"
        try:
            started = time.monotonic()
            size, digest = proxy.make(src, tmp, spec)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            # The hash first, then the proxy under its name: a proxy is never found
            # without the hash that proves what it holds.
            _write_atomic(made, digest)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        log.info("made an upload proxy of %s: %.1f MB in %.1f s", os.path.basename(src),
                 size / 1e6, time.monotonic() - started)
        self.trim(keep=final)
        return ProxyFile(str(final), size, digest, spec.mime)

    def trim(self, keep: Path | None = None) -> None:
        """Delete the least recently used proxies while they take more than the cap."""
        items = []
        for p in self.directory.glob("*"):
            if p.name.startswith(".") or p.name.endswith(".sha256"):
                continue
            with contextlib.suppress(OSError):
                st = p.stat()
                items.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in items)
        for _, size, p in sorted(items):
            if total <= self.cap:
                break
            if p == keep:
                continue
            self.drop(p)
            total -= size

    def drop(self, p: Path) -> None:
        for q in (p, p.with_name(p.name + ".sha256")):
            with contextlib.suppress(OSError):
                q.unlink()

    def sweep_temps(self) -> None:
        """Remove temporary proxies a crash or a full disk left behind."""
        now = time.time()
        for p in self.directory.glob(".tmp-*"):
            with contextlib.suppress(OSError):
                if now - p.stat().st_mtime > STALE_TEMP:
                    p.unlink()

    def forget(self, sha: str) -> None:
        """The content is gone: its proxies too."""
        for p in self.directory.glob(f"{sha}.*"):
            with contextlib.suppress(OSError):
                p.unlink()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{secrets.token_hex(6)}.sha256")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
