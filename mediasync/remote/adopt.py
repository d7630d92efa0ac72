"""Live copies of ours a rebuilt database does not know yet: a file that needs a
copy adopts one of them instead of uploading its bytes again (app/statedir.py).

The refresh offers them (``ownership.plan_refresh`` while the rebuild is pending);
``Mirror.ensure`` asks ``adopt`` before it uploads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from mediasync.remote.context import RemoteContext
from mediasync.rules.ownership import RemoteListing, owner_of
from mediasync.rules.rows import ContentRow
from mediasync.rules.states import MIN_USABLE_SECONDS

log = logging.getLogger("mediasync")


class Adopter:
    """``on_copy(expires_at)`` hears of each copy adopted, as of each one made."""

    def __init__(self, ctx: RemoteContext, on_copy: Callable[[float], None] | None) -> None:
        self.ctx = ctx
        self._on_copy = on_copy
        self._by_prefix: dict[str, list[RemoteListing]] = {}

    def offer(self, listings: Iterable[RemoteListing]) -> None:
        """The adoptable copies of the latest listing (they replace the earlier ones)."""
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
