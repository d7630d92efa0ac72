"""Answers we cannot fully make sense of: keep the work, warn once per run.

The service's File answers are read leniently (docs/architecture.md, "Failure
vocabulary"): a hash in an unexpected form, a missing uri, expirationTime or
state never make us throw an upload away; only proof that the local file changed
does.
"""

from __future__ import annotations

import logging
import os

from mediasync.gemini import File, parse_sha256
from mediasync.gemini.models import epoch
from mediasync.local.folderio import FolderUnavailable
from mediasync.local.scan import NotRegular, digest
from mediasync.media.formats import FILE_TTL_SECONDS
from mediasync.remote.context import RemoteContext

log = logging.getLogger("mediasync")


class IncompleteAnswers:
    """Reads what a File answer left out or put in an unexpected form."""

    def __init__(self, ctx: RemoteContext) -> None:
        self.ctx = ctx
        self._warned: set[str] = set()  # answers we could not read: said once per run

    async def hash_holds(self, sha: str, path: str, file: File) -> bool:
        """Whether the upload carries our bytes. Only proof that the *local* file
        changed throws an upload away: a hash we cannot read, or one that differs
        while the file still holds what we hashed, keeps the copy with one warning.
        """
        reported, form = parse_sha256(file.sha256_hash)
        if reported is None:
            self.warn_once(
                "nohash",
                "the service's upload answers carry no sha256Hash that mediasync can read "
                f"(got {file.sha256_hash!r}); keeping uploads without checking them",
            )
            return True
        if form != "hex":
            self.warn_once(
                "hashform",
                f"the service reports sha256Hash in the {form} form, not as base64 of the "
                "hex digest (the documented live form); accepted",
            )
        if reported == sha:
            return True
        row = self.ctx.store.get_path(path)
        try:
            # In the folder's own threads: a hung share stalls no other folder.
            now_sha = await self.ctx.fs.call(row.folder if row else os.path.dirname(path),
                                             digest, path, timeout=None)
        except (OSError, NotRegular, FolderUnavailable):
            now_sha = None  # vanished, replaced or not answering: the next look decides
        if now_sha is not None and now_sha != sha:
            log.info("%s changed while it was uploaded; uploading it again",
                     os.path.basename(path))
            return False
        self.warn_once(
            "hashdiff",
            "the service reports hashes mediasync does not understand "
            f"({file.sha256_hash!r} for a file whose SHA-256 is {sha}); "
            "the local file is unchanged, so the upload is kept",
        )
        return True

    def uri(self, file: File) -> str:
        if file.uri:
            return file.uri
        self.warn_once("nouri", f"the service's answer for {file.name} has no uri; "
                        "using the one its name implies")
        return self.ctx.client.file_uri(file.name)

    def expiry(self, file: File) -> float:
        """The server's expirationTime; if it is missing or unreadable, 48 h from the
        upload, so the copy is used and renewed in time rather than thrown away."""
        expires = epoch(file.expiration_time)
        if expires is not None:
            return expires
        self.warn_once("noexpiry", f"the service's answer for {file.name} has no readable "
                        "expirationTime; assuming 48 hours from the upload")
        return (epoch(file.create_time) or self.ctx.clock()) + FILE_TTL_SECONDS

    def warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)

