"""Uploading a content's bytes: pick a local path that still holds them, resume a
recorded upload session or start one (its URL recorded before the first byte),
and check that what arrived is what we hashed (incomplete.py). The wire protocol
is gemini/resumable_upload.py's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from urllib.parse import unquote

from mediasync.gemini import File, FileChanged, UploadSession, UploadSessionLost
from mediasync.gemini.redact import redact
from mediasync.gemini.resumable_upload import DEFAULT_GRANULARITY
from mediasync.local.scan import local_facts
from mediasync.remote.context import RemoteContext
from mediasync.remote.incomplete import IncompleteAnswers
from mediasync.remote.proxies import Proxies
from mediasync.rules import ownership, units
from mediasync.rules.failures import ContentUnavailable
from mediasync.rules.rows import ContentRow

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
    """Uploads a content; ``promote`` takes a copy the upload answer already shows
    ACTIVE (or FAILED) without a poll; ``room(sha, size)`` is held while the bytes go
    (the storage budget: remote/budget.py); ``proxies`` makes the upload proxy a
    file's settings ask for (remote/proxies.py), None: always the original."""

    def __init__(
        self,
        ctx: RemoteContext,
        answers: IncompleteAnswers,
        promote: Callable[[str, File], None],
        room: Callable[[str, int], AbstractAsyncContextManager[None]],
        proxies: Proxies | None = None,
    ) -> None:
        self.ctx = ctx
        self.answers = answers
        self.promote = promote
        self.room = room
        self.proxies = proxies

    async def source(self, sha: str) -> str:
        """A live local path that still holds these bytes (by its recorded stat)."""
        for p in self.ctx.store.live_paths_for(sha):
            row = self.ctx.store.get_path(p)
            try:
                # In the folder's threads, at its time-out: a hung share stalls no renewal.
                # A path recorded with a sha through a symbolic link was followed
                # (follow_symlinks): the link still stays inside its folder.
                facts = await self.ctx.fs.call(row.folder if row else os.path.dirname(p),
                                               local_facts, p, row.folder if row else None)
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
        proxy = await self.proxies.for_upload(c, path) if self.proxies is not None else None
        # What goes: the proxy's bytes (its own hash proves them), or the original's.
        send, mime, size, digest = ((proxy.path, proxy.mime, proxy.size, proxy.sha256)
                                    if proxy else (path, c.mime, c.size, sha))
        session = None
        if c.next_url:
            session = UploadSession(
                url=c.next_url, size=size, granularity=c.next_granularity or DEFAULT_GRANULARITY
            )

        def progress(s: UploadSession, offset: int) -> None:
            # Recorded before the first byte and after every acknowledged chunk,
            # so kill -9 resumes from here.
            url = storable_url(s.url)
            if url is None:  # the key would reach the state file: a crash restarts instead
                return
            self.ctx.store.session_recorded(sha, self.ctx.clock(), url, offset, s.granularity)

        display = ownership.display_name(sha, os.path.basename(path), self.ctx.instance)
        async with self.room(sha, size), self.ctx.upload_slots:
            try:
                file = await self.ctx.client.upload(
                    send, mime, display, session=session, on_progress=progress
                )
            except (UploadSessionLost, FileChanged) as e:
                if isinstance(e, FileChanged) and proxy is None:
                    raise  # the user's file changed: identify it again
                # A session gone, or one begun for other bytes (a proxy made again).
                log.info("%s: upload session %s; starting over", os.path.basename(path),
                         "expired" if isinstance(e, UploadSessionLost) else "is for other bytes")
                self.ctx.store.session_dropped(sha, self.ctx.clock())
                file = await self.ctx.client.upload(send, mime, display, on_progress=progress)
        if not await self.answers.hash_holds(digest, send, file):
            # The file changed under the upload: the copy holds other bytes.
            self.ctx.store.doom(file.name, "content mismatch", self.ctx.clock())
            self.ctx.store.session_dropped(sha, self.ctx.clock())
            raise FileChanged("the file changed while it was uploaded")
        self.ctx.store.uploaded(sha, self.ctx.clock(), file.name, self.answers.uri(file),
                                self.answers.expiry(file), c.uploads + 1,
                                proxy.size if proxy else None)
        log.info(
            "uploaded %s (%s) as %s",
            os.path.basename(path),
            (f"a proxy of {units.human_bytes(size)} for {units.human_bytes(c.size)}" if proxy
             else units.human_bytes(c.size)),
            file.name,
        )
        if file.state in ("ACTIVE", "FAILED"):
            self.promote(sha, file)
