"""The remote side of a content: upload (resumable, across restarts), wait for
ACTIVE, renew before expiry, reconcile with the server's listing, delete.

Every step is recorded in the store before and after it runs, so a crash at any
point resumes from the database (DESIGN.md, "Remote lifecycle").
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Awaitable, Callable
from datetime import datetime

from mediasync import failures, plan
from mediasync.failures import classify
from mediasync.folderio import FolderIO
from mediasync.gemini import (
    ApiError,
    File,
    FileChanged,
    GeminiClient,
    UploadSession,
    UploadSessionLost,
    parse_sha256,
)
from mediasync.media import FILE_TTL_SECONDS
from mediasync.scan import digest, local_facts
from mediasync.store import ContentRow, Store

log = logging.getLogger("mediasync")

__all__ = ["ContentUnavailable", "Mirror", "classify"]


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value else None


class ContentUnavailable(Exception):
    """No usable remote copy now; ``message`` says why, ``retry_at`` when to look again."""

    def __init__(self, message: str, retry_at: float | None, *, changed: bool = False) -> None:
        super().__init__(message)
        self.retry_at = retry_at
        self.changed = changed  # the local file changed: identify it again, now


class CopyVanished(Exception):
    """The copy being processed is gone (purged, or expired meanwhile): upload anew."""


class Mirror:
    def __init__(
        self,
        client: GeminiClient,
        store: Store,
        *,
        renew_before: float,
        upload_slots: asyncio.Semaphore,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        fs: FolderIO | None = None,
        instance: str | None = None,
    ) -> None:
        self.client = client
        self.fs = fs or FolderIO()
        self.instance = instance  # in display names: whose copies a refresh may delete
        self.store = store
        self.renew_before = renew_before
        self.upload_slots = upload_slots
        self.clock = clock
        self.sleep = sleep
        self._locks: dict[str, asyncio.Lock] = {}
        self._renewals: dict[str, asyncio.Task[None]] = {}
        self._warned: set[str] = set()  # answers we could not read: said once per run
        # Told each new copy's expiry (the daemon plans its renewal check by it).
        self.on_copy: Callable[[float], None] | None = None
        self.jitter: Callable[[], float] = random.random

    def _lock(self, sha: str) -> asyncio.Lock:
        lock = self._locks.get(sha)
        if lock is None:
            lock = self._locks[sha] = asyncio.Lock()
        return lock

    # -- the copy a generation uses --------------------------------------------
    async def ensure(self, sha: str) -> ContentRow:
        """A content with a usable ACTIVE remote copy; uploads it when needed.

        Raises ContentUnavailable when there is none now (failed, or waiting to
        retry), and lets ApiError of kind "auth" through to the engine.
        """
        for _ in range(4):
            c = self.store.get_content(sha)
            assert c is not None
            step = plan.remote_step(c, self.clock(), self.renew_before)
            if step in ("ready", "renew"):
                if step == "renew":
                    self.start_renewal(sha)
                return c
            if step == "failed":
                raise ContentUnavailable(c.error or "failed", None)
            if step == "wait":
                raise ContentUnavailable(c.error or "waiting to retry", c.retry_at)
            async with self._lock(sha):
                c = self.store.get_content(sha)
                assert c is not None
                if plan.remote_step(c, self.clock(), self.renew_before) in ("ready", "renew"):
                    continue
                await self._make_copy(c)
        retry = self.clock() + failures.backoff(1, self.jitter())
        raise ContentUnavailable("the remote copy keeps disappearing; will retry", retry)

    def start_renewal(self, sha: str) -> None:
        task = self._renewals.get(sha)
        if task is None or task.done():
            self._renewals[sha] = asyncio.create_task(self._renew(sha), name=f"renew {sha[:12]}")

    async def _renew(self, sha: str) -> None:
        async with self._lock(sha):
            c = self.store.get_content(sha)
            if c is None or not self.store.live_paths_for(sha):
                return
            if plan.remote_step(c, self.clock(), self.renew_before) != "renew":
                return
            if c.retry_at is not None and c.retry_at > self.clock():
                return
            try:
                await self._make_copy(c)
            except ContentUnavailable:
                return  # recorded on the row; the current copy still serves
            except ApiError as e:
                log.error("renewing %s failed: %s", self._label(sha), e)
                return
        # The replaced copy goes now, not at the next listing hours later: it
        # counts against the project's 20 GB until it is deleted.
        if c.remote_name:
            try:
                await self.delete_doomed([c.remote_name])
            except ApiError as e:
                log.warning("could not delete %s yet: %s", c.remote_name, e)

    async def wait_renewals(self) -> None:
        tasks = [t for t in self._renewals.values() if not t.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def cancel_renewals(self) -> None:
        for t in self._renewals.values():
            t.cancel()

    # -- upload, poll, promote -------------------------------------------------
    def _label(self, sha: str) -> str:
        paths = self.store.live_paths_for(sha)
        return os.path.basename(paths[0]) if paths else sha[:12]

    async def _source(self, sha: str) -> str:
        """A live local path that still holds these bytes (by its recorded stat)."""
        for p in self.store.live_paths_for(sha):
            row = self.store.get_path(p)
            try:
                # In the folder's threads, at its time-out: a hung share stalls no renewal.
                facts = await self.fs.call(row.folder if row else os.path.dirname(p),
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

    async def _make_copy(self, c: ContentRow) -> None:
        sha = c.sha256
        now = self.clock()
        try:
            if not c.next_name:
                await self._upload(c)
            await self._await_active(sha)
        except CopyVanished:
            return  # next_name is dropped: the caller's next look uploads again
        except ApiError as e:
            # A renewal that fails never takes the working copy away (issue 8, row 9).
            v = failures.judge_api(e, c.attempts + 1, now, self.jitter(),
                                   serving=plan.usable(c, now))
            if v.kind == "config":
                raise
            if v.kind == "permanent":
                msg = v.reason
                self.store.update_content(sha, now, next_url=None, next_offset=None)
            elif e.storage_full:
                msg = v.reason
            else:
                msg = f"upload failed, will retry: {v.reason}"
            self.store.update_content(sha, now, error=msg, retry_at=v.retry_at,
                                      attempts=c.attempts + 1)
            log.error("%s: %s", self._label(sha), msg)
            raise ContentUnavailable(msg, v.retry_at) from e
        except (FileChanged, FileNotFoundError, PermissionError) as e:
            self.store.update_content(sha, now, next_url=None, next_offset=None)
            msg = f"the file changed or vanished during upload: {e}"
            raise ContentUnavailable(msg, None, changed=True) from e

    async def _upload(self, c: ContentRow) -> None:
        sha = c.sha256
        path = await self._source(sha)
        session = None
        if c.next_url:
            session = UploadSession(
                url=c.next_url, size=c.size, granularity=c.next_granularity or 8 * 1024 * 1024
            )

        def progress(s: UploadSession, offset: int) -> None:
            # Recorded before the first byte and after every acknowledged chunk,
            # so kill -9 resumes from here.
            self.store.update_content(
                sha, self.clock(), next_url=s.url, next_offset=offset,
                next_granularity=s.granularity,
            )

        async with self.upload_slots:
            try:
                file = await self.client.upload(
                    path,
                    c.mime,
                    plan.display_name(sha, os.path.basename(path), self.instance),
                    session=session,
                    on_progress=progress,
                )
            except UploadSessionLost:
                log.info("%s: upload session expired; starting over", os.path.basename(path))
                self.store.update_content(sha, self.clock(), next_url=None, next_offset=None)
                file = await self.client.upload(
                    path,
                    c.mime,
                    plan.display_name(sha, os.path.basename(path), self.instance),
                    on_progress=progress,
                )
        if not await self._hash_holds(sha, path, file):
            # The file changed under the upload: the copy holds other bytes.
            self.store.doom(file.name, "content mismatch", self.clock())
            self.store.update_content(sha, self.clock(), next_url=None, next_offset=None)
            raise FileChanged("the file changed while it was uploaded")
        self.store.update_content(
            sha,
            self.clock(),
            next_url=None,
            next_offset=None,
            next_name=file.name,
            next_uri=self._uri(file),
            next_expires_at=self._expiry(file),
            uploads=c.uploads + 1,
        )
        log.info(
            "uploaded %s (%s) as %s",
            os.path.basename(path),
            plan.human_bytes(c.size),
            file.name,
        )
        if file.state in ("ACTIVE", "FAILED"):
            self._settle_state(sha, file)

    async def _hash_holds(self, sha: str, path: str, file: File) -> bool:
        """Whether the upload carries our bytes. Only proof that the *local* file
        changed throws an upload away: a hash we cannot read, or one that differs
        while the file still holds what we hashed, keeps the copy with one warning.
        """
        reported, form = parse_sha256(file.sha256_hash)
        if reported is None:
            self._warn_once(
                "nohash",
                "the service's upload answers carry no sha256Hash that mediasync can read "
                f"(got {file.sha256_hash!r}); keeping uploads without checking them",
            )
            return True
        if form != "hex":
            self._warn_once(
                "hashform",
                f"the service reports sha256Hash in the {form} form, not as base64 of the "
                "hex digest (the documented live form); accepted",
            )
        if reported == sha:
            return True
        try:
            now_sha = await asyncio.to_thread(digest, path)
        except OSError:
            now_sha = None  # vanished: the next look at the path decides
        if now_sha is not None and now_sha != sha:
            log.info("%s changed while it was uploaded; uploading it again",
                     os.path.basename(path))
            return False
        self._warn_once(
            "hashdiff",
            "the service reports hashes mediasync does not understand "
            f"({file.sha256_hash!r} for a file whose SHA-256 is {sha}); "
            "the local file is unchanged, so the upload is kept",
        )
        return True

    def _uri(self, file: File) -> str:
        if file.uri:
            return file.uri
        self._warn_once("nouri", f"the service's answer for {file.name} has no uri; "
                        "using the one its name implies")
        return self.client.file_uri(file.name)

    def _expiry(self, file: File) -> float:
        """The server's expirationTime; if it is missing or unreadable, 48 h from the
        upload, so the copy is used and renewed in time rather than thrown away."""
        expires = _ts(file.expiration_time)
        if expires is not None:
            return expires
        self._warn_once("noexpiry", f"the service's answer for {file.name} has no readable "
                        "expirationTime; assuming 48 hours from the upload")
        return (_ts(file.create_time) or self.clock()) + FILE_TTL_SECONDS

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)

    async def _await_active(self, sha: str) -> None:
        c = self.store.get_content(sha)
        assert c is not None
        if not c.next_name:
            return
        try:
            file = await self.client.wait_processed(c.next_name, sleep=self.sleep)
        except ApiError as e:
            if classify(e) != "gone":
                raise
            # Purged or expired before it became ACTIVE: it never will (issue 8, row 3).
            self.store.update_content(sha, self.clock(), next_name=None, next_uri=None,
                                      next_expires_at=None)
            log.warning("%s: the copy being processed is gone; uploading again",
                        self._label(sha))
            raise CopyVanished from e
        self._settle_state(sha, file)

    def _settle_state(self, sha: str, file: File) -> None:
        now = self.clock()
        c = self.store.get_content(sha)
        if c is None:  # retired while it was uploaded: nothing needs it
            self.store.doom(file.name, "no longer needed", now)
            return
        if file.state == "FAILED":
            msg = f"the service could not process it: {file.error_message or 'FAILED'}"
            # Permanent for these bytes, unless a working copy still serves (a renewal).
            retry = None
            if plan.usable(c, now):
                retry = now + failures.backoff(c.attempts + 1, self.jitter())
            self.store.doom(file.name, "processing failed", now)
            self.store.update_content(
                sha, now, next_name=None, next_uri=None, next_expires_at=None,
                error=msg, retry_at=retry, attempts=c.attempts + 1,
            )
            log.error("%s: %s", self._label(sha), msg)
            return
        if file.state != "ACTIVE":
            self._warn_once("nostate", f"the service's answer for {file.name} names no state "
                            f"({file.state}); using the copy as ACTIVE")
        old = c.remote_name
        expires = _ts(file.expiration_time) or c.next_expires_at or self._expiry(file)
        with self.store.transaction():
            self.store.update_content(
                sha,
                now,
                remote_name=file.name,
                uri=file.uri or c.next_uri or self.client.file_uri(file.name),
                expires_at=expires,
                next_name=None,
                next_uri=None,
                next_expires_at=None,
                error=None,
                retry_at=None,
                attempts=0,
            )
            if old and old != file.name:
                self.store.doom(old, "renewed", now)
        if old and old != file.name:
            log.info("renewed %s: %s replaces %s", self._label(sha), file.name, old)
        if self.on_copy is not None:
            self.on_copy(expires)

    # -- the server's listing is the truth -------------------------------------
    async def refresh(self) -> list[str]:
        """List every remote file once and reconcile; returns contents to upload again."""
        # The database first: a copy that goes live while the listing is on its way
        # must not look vanished (issue 8, row 6). Anything newer than this snapshot
        # is younger than the listing and left to the next refresh.
        contents = self.store.all_contents()
        known = self.store.known_remote_names()
        files = await self.client.list_files()
        now = self.clock()
        listing = [
            plan.RemoteListing(f.name, f.display_name, _ts(f.create_time), _ts(f.expiration_time))
            for f in files
        ]
        uploading = {c.sha256[:16] for c in contents if c.next_url or c.next_name}
        result = plan.plan_refresh(listing, contents, known, uploading, now, self.instance)
        seen = {c.sha256: c.remote_name for c in contents}
        vanished = []
        with self.store.transaction():
            for sha in result.vanished:
                # Only if the row still names the copy the snapshot did (compare-and-set).
                if self._still_names(sha, seen[sha]):
                    vanished.append(sha)
                    self.store.update_content(sha, now, remote_name=None, uri=None,
                                              expires_at=None)
            for sha, expires in result.expiries:
                if self._still_names(sha, seen[sha]):
                    self.store.update_content(sha, now, expires_at=expires)
            known_now = self.store.known_remote_names()
            for name in result.delete:
                if name not in known_now:
                    self.store.doom(name, "left behind", now)
        for sha in vanished:
            log.warning("the remote copy of %s is gone; uploading again", self._label(sha))
        self.renew_due()
        return vanished

    def next_renewal_at(self) -> float | None:
        """When the next live copy enters its renewal window (wall clock), if any."""
        now = self.clock()
        windows = [c.expires_at - self.renew_before for c in self.store.all_contents()
                   if c.remote_name and c.expires_at and c.expires_at - self.renew_before > now]
        return min(windows, default=None)

    def renew_due(self) -> int:
        """Start a renewal for every copy in its renewal window (the database only,
        no API call): an idle library is renewed on time whatever the listing does."""
        now, started = self.clock(), 0
        for c in self.store.all_contents():
            # Cheap test first: only a copy due for renewal needs its paths looked up.
            if (
                c.remote_name
                and plan.remote_step(c, now, self.renew_before) == "renew"
                and self.store.live_paths_for(c.sha256)
            ):
                self.start_renewal(c.sha256)
                started += 1
        return started

    def _still_names(self, sha: str, name: str | None) -> bool:
        c = self.store.get_content(sha)
        return c is not None and name is not None and c.remote_name == name

    def forget_copy(self, sha: str) -> None:
        """The server says the copy is gone (403 on use): upload again."""
        self.store.update_content(sha, self.clock(), remote_name=None, uri=None, expires_at=None)

    async def delete_doomed(self, names: list[str] | None = None) -> None:
        """Delete the remote files recorded as doomed (all, or these of them)."""
        doomed = self.store.doomed()
        for name in doomed if names is None else [n for n in names if n in doomed]:
            try:
                await self.client.delete_file(name)
            except ApiError as e:
                if classify(e) == "auth":
                    raise
                if not e.file_gone:
                    log.warning("could not delete %s yet: %s", name, e)
                    continue
            self.store.undoom(name)
            log.debug("deleted remote %s", name)

    def busy(self, sha: str) -> bool:
        """An upload, poll or renewal of this content is under way."""
        lock = self._locks.get(sha)
        return lock is not None and lock.locked()

    def retire(self, c: ContentRow) -> None:
        """No path needs this content any more: delete its remote copies."""
        now = self.clock()
        with self.store.transaction():
            for name in (c.remote_name, c.next_name):
                if name:
                    self.store.doom(name, "no longer needed", now)
            self.store.delete_content(c.sha256)
