"""Uploading a content's bytes: pick a local path that still holds them, resume a
recorded upload session or start one (its URL recorded before the first byte),
and check that what arrived is what we hashed (lenient.py).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING
from urllib.parse import unquote

from mediasync.gemini import FileChanged, UploadSession, UploadSessionLost
from mediasync.gemini.redact import redact
from mediasync.gemini.resumable_upload import DEFAULT_GRANULARITY
from mediasync.local.scan import local_facts
from mediasync.rules import ownership, units
from mediasync.rules.failures import ContentUnavailable
from mediasync.rules.rows import ContentRow

if TYPE_CHECKING:
    from mediasync.remote.mirror import Mirror

log = logging.getLogger("mediasync")


def storable_url(url: str) -> str | None:
    """An upload URL as the state file may keep it: without a ``key`` query parameter
    (a start keyed with ?key= gets the key back inside its URL, wire/16; chunk
    requests need none, the URL's upload id authorises them), or None when the API
    key (a registered secret) would still be in it. The key never reaches a state file."""
    base, sep, query = url.partition("?")
    if sep:
        kept = [p for p in query.split("&") if p.split("=", 1)[0] != "key"]
        url = base + ("?" + "&".join(kept) if kept else "")
    return None if redact(url) != url or redact(unquote(url)) != unquote(url) else url


class Uploader:
    def __init__(self, mirror: Mirror) -> None:
        self.m = mirror

    async def source(self, sha: str) -> str:
        """A live local path that still holds these bytes (by its recorded stat)."""
        for p in self.m.store.live_paths_for(sha):
            row = self.m.store.get_path(p)
            try:
                # In the folder's threads, at its time-out: a hung share stalls no renewal.
                facts = await self.m.fs.call(row.folder if row else os.path.dirname(p),
                                           local_facts, p)
            except Exception:  # vanished, a FIFO, a folder not answering…: try the next path
                continue
            if row and (facts.size, facts.mtime_ns, facts.inode) == (
                row.size,
                row.mtime_ns,
                row.inode,
            ):
                return p
        raise ContentUnavailable("no local file holds these bytes any more", None)

    async def upload(self, c: ContentRow) -> None:
        sha = c.sha256
        path = await self.source(sha)
        session = None
        if c.next_url:
            session = UploadSession(
                url=c.next_url, size=c.size, granularity=c.next_granularity or DEFAULT_GRANULARITY
            )

        def progress(s: UploadSession, offset: int) -> None:
            # Recorded before the first byte and after every acknowledged chunk,
            # so kill -9 resumes from here.
            url = storable_url(s.url)
            if url is None:  # the key would reach the state file: a crash restarts instead
                return
            self.m.store.session_recorded(sha, self.m.clock(), url, offset, s.granularity)

        display = ownership.display_name(sha, os.path.basename(path), self.m.instance)
        async with self.m.upload_slots:
            try:
                file = await self.m.client.upload(
                    path, c.mime, display, session=session, on_progress=progress
                )
            except UploadSessionLost:
                log.info("%s: upload session expired; starting over", os.path.basename(path))
                self.m.store.session_dropped(sha, self.m.clock())
                file = await self.m.client.upload(path, c.mime, display, on_progress=progress)
        if not await self.m.lenient.hash_holds(sha, path, file):
            # The file changed under the upload: the copy holds other bytes.
            self.m.store.doom(file.name, "content mismatch", self.m.clock())
            self.m.store.session_dropped(sha, self.m.clock())
            raise FileChanged("the file changed while it was uploaded")
        self.m.store.uploaded(sha, self.m.clock(), file.name, self.m.lenient.uri(file),
                              self.m.lenient.expiry(file), c.uploads + 1)
        log.info(
            "uploaded %s (%s) as %s",
            os.path.basename(path),
            units.human_bytes(c.size),
            file.name,
        )
        if file.state in ("ACTIVE", "FAILED"):
            self.m.settle_state(sha, file)
