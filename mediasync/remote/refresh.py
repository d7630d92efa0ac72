"""The server's listing is the truth: copies that vanished are uploaded again,
expiry times are taken over, and copies of ours that nothing refers to are
deleted (this instance's only). Runs every `refresh_every`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from mediasync.gemini.models import epoch
from mediasync.remote.context import RemoteContext
from mediasync.rules import ownership
from mediasync.store import Meta

log = logging.getLogger("mediasync")


def record_usage(ctx: RemoteContext, listing: Iterable[tuple[str, str | None, int]],
                 known: set[str], now: float) -> None:
    """Who holds the service's store, from a listing's (name, display name, size): for
    the storage budget and `status` (Meta.STORE_USAGE)."""
    ctx.store.write(Meta.STORE_USAGE, {
        **ownership.store_usage(listing, known, ctx.instance), "at": now})


class Refresher:
    """``keeps_alive`` says whether a vanished copy was expected to live (a warning)
    or to lapse (keep_alive = "on_use"); ``renew_due`` starts the renewals the
    expiry times taken over call for; ``offer`` hears of the copies of ours a
    rebuilt database may adopt (Adopter.offer)."""

    def __init__(
        self,
        ctx: RemoteContext,
        *,
        keeps_alive: Callable[[str], bool],
        renew_due: Callable[[], int],
        offer: Callable[[Iterable[ownership.RemoteListing]], None] = lambda _: None,
    ) -> None:
        self.ctx = ctx
        self.keeps_alive = keeps_alive
        self.renew_due = renew_due
        self.offer = offer

    async def refresh(self) -> list[str]:
        """List every remote file once and reconcile; returns contents to upload again."""
        # The database first: a copy that goes live while the listing is on its way
        # must not look vanished (issue 8, row 6). Anything newer than this snapshot
        # is younger than the listing and left to the next refresh.
        ctx, store = self.ctx, self.ctx.store
        contents = store.copy_refs()
        known = store.known_remote_names()
        # A page at a time: only what the plan reads of each file is kept.
        listing = [
            ownership.RemoteListing(f.name, f.display_name, epoch(f.create_time),
                                    epoch(f.expiration_time), f.sha256_hex, f.state, f.uri,
                                    f.size_bytes)
            async for page in ctx.client.file_pages() for f in page
        ]
        now = ctx.clock()
        record_usage(ctx, ((f.name, f.display_name, f.size or 0) for f in listing), known,
                     now)
        uploading = {c.sha256[:16] for c in contents if c.next_url or c.next_name}
        rebuilding = bool(store.read(Meta.RECOVERY).get("pending"))
        result = ownership.plan_refresh(listing, contents, known, uploading, now, ctx.instance,
                                        rebuilding=rebuilding)
        self.offer(result.adoptable)
        seen = {c.sha256: c.remote_name for c in contents}
        vanished = []
        with store.transaction():
            for sha in result.vanished:
                # Only if the row still names the copy the snapshot did (compare-and-set).
                if self._still_names(sha, seen[sha]):
                    vanished.append(sha)
                    store.copy_gone(sha, now)
            for sha, expires in result.expiries:
                if self._still_names(sha, seen[sha]):
                    store.expiry_seen(sha, now, expires)
            known_now = store.known_remote_names()
            for name in result.delete:
                if name not in known_now:
                    store.doom(name, "left behind", now)
        for sha in vanished:
            if self.keeps_alive(sha):
                log.warning("the remote copy of %s is gone; uploading again", ctx.label(sha))
            else:  # keep_alive = "on_use": a lapsed copy is expected, and made again on use
                log.debug("the remote copy of %s lapsed", ctx.label(sha))
        self.renew_due()
        return vanished

    def _still_names(self, sha: str, name: str | None) -> bool:
        c = self.ctx.store.get_content(sha)
        return c is not None and name is not None and c.remote_name == name

