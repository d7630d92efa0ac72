"""Live copies of ours a rebuilt database does not know yet: a file that needs a
copy adopts one of them instead of uploading its bytes again (app/statedir.py).

The refresh offers them (``ownership.plan_refresh`` while the rebuild is pending);
``Mirror.ensure`` asks ``adopt`` before it uploads. Until a listing was read, a
rebuilt database uploads nothing (``awaits_listing``): a start-up listing that failed
once sent a whole library's bytes again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from mediasync.remote.context import RemoteContext
from mediasync.rules.failures import ContentUnavailable
from mediasync.rules.ownership import RemoteListing, owner_of
from mediasync.rules.rows import ContentRow
from mediasync.rules.states import MIN_USABLE_SECONDS
from mediasync.store import Meta

log = logging.getLogger("mediasync")

# A copy waiting for a rebuilt database's listing looks again this often, and no
# longer than LISTING_GRACE in all: then it is uploaded (a listing that keeps failing
# must not keep the library from the service; the copies it would have named are
# deleted as leftovers once one is read).
LISTING_RETRY = 60.0
LISTING_GRACE = 30 * 60.0
WAITING_FOR_LISTING = ("waiting for the remote listing: the rebuilt state database adopts "
                       "the copies of ours it names instead of uploading them again")


class Adopter:
    """``on_copy(expires_at)`` hears of each copy adopted, as of each one made."""

    def __init__(self, ctx: RemoteContext, on_copy: Callable[[float], None] | None) -> None:
        self.ctx = ctx
        self._on_copy = on_copy
        self._by_prefix: dict[str, list[RemoteListing]] = {}
        self.listed = False  # a listing was read (and offered) since the start
        self._listing: asyncio.Event | None = None  # set when the one under way ends
        self._waiting_since: float | None = None  # the first upload that waited
        self._gave_up = False

    @contextmanager
    def listing(self) -> Iterator[None]:
        """A refresh's listing under way: a rebuilt database's uploads wait for it."""
        done = self._listing = asyncio.Event()
        try:
            yield
        finally:
            done.set()
            if self._listing is done:
                self._listing = None

    async def awaits_listing(self, c: ContentRow) -> None:
        """Raise ContentUnavailable (recorded, waiting) while a rebuilt database has not
        read a listing to adopt ``c``'s copy from, for LISTING_GRACE at most; one under
        way is waited for (`sync` lists and scans at once)."""
        ctx = self.ctx
        if self.listed or not ctx.store.read(Meta.RECOVERY).get("pending"):
            return
        if self._listing is not None:
            await self._listing.wait()
            if self.listed:
                return
        now = ctx.clock()
        if self._waiting_since is None:
            self._waiting_since = now
        if now - self._waiting_since >= LISTING_GRACE:
            if not self._gave_up:
                self._gave_up = True
                log.warning("the remote listing could not be read for %d minutes; the "
                            "rebuilt state database uploads without it",
                            LISTING_GRACE // 60)
            return
        retry = now + LISTING_RETRY
        ctx.store.copy_failed(c.sha256, now, WAITING_FOR_LISTING, retry, c.attempts)
        raise ContentUnavailable(WAITING_FOR_LISTING, retry)

    def offer(self, listings: Iterable[RemoteListing]) -> None:
        """The adoptable copies of the latest listing (they replace the earlier ones)."""
        self.listed = True
        by_prefix: dict[str, list[RemoteListing]] = {}
        for f in listings:
            owner = owner_of(f.display_name)
            key = f.sha256[:16] if f.sha256 else (owner[1] if owner else "")
            by_prefix.setdefault(key, []).append(f)
        self._by_prefix = by_prefix

    def adopt(self, c: ContentRow) -> bool:
        """Make a listed live copy of ``c``'s bytes its copy; False when there is none."""
        ctx = self.ctx
        now = ctx.clock()
        found = self._by_prefix.get(c.sha256[:16], [])
        # The one that lives longest: the others become spares the next refresh deletes.
        for f in sorted(found, key=lambda f: -(f.expires_at or 0)):
            if not f.holds(c.sha256, c.size) or f.expires_at is None:
                continue
            found.remove(f)
            if f.expires_at - now <= MIN_USABLE_SECONDS:
                continue
            ctx.store.promoted(c.sha256, now, f.name, f.uri or ctx.client.file_uri(f.name),
                               f.expires_at)
            log.info("%s: adopted its live remote copy %s (the state database was rebuilt)",
                     ctx.label(c.sha256), f.name)
            if self._on_copy is not None:
                self._on_copy(f.expires_at)
            return True
        return False
