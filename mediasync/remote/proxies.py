"""Which bytes an upload sends: the original, or an upload proxy (media/proxy.py)
made in the file's folder threads into the state directory (local/proxies.py).

A proxy that cannot be made (a broken video) falls back to the original, once per
content and run, and the reason is kept: if the original is refused too (too
large, or the service cannot process it), the file's verdict names both.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from mediasync.local.proxies import ProxyCache, ProxyFile
from mediasync.media.formats import MAX_FILE_BYTES
from mediasync.media.proxy import ProxyFailed, Spec
from mediasync.remote.context import RemoteContext
from mediasync.rules.rows import ContentRow
from mediasync.rules.units import human_bytes

log = logging.getLogger("mediasync")


class NoUpload(Exception):
    """Neither a proxy nor the original can be uploaded: a verdict on these bytes."""


class ProxySpace(Exception):
    """The state directory cannot take a proxy now (disk full, read-only): transient."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.error = error


class Proxies:
    """``spec_for(content, path)``: the proxy this file's settings ask for, or None."""

    def __init__(self, ctx: RemoteContext, cache: ProxyCache,
                 spec_for: Callable[[ContentRow, str], Spec | None]) -> None:
        self.ctx = ctx
        self.cache = cache
        self.spec_for = spec_for
        self.failed: dict[str, str] = {}  # sha → why its proxy could not be made

    async def for_upload(self, c: ContentRow, path: str) -> ProxyFile | None:
        """The proxy to upload for ``c`` (read from ``path``), or None for the original.
        Raises NoUpload when neither can go, OSError when the state directory cannot
        take the proxy now (a full disk: transient)."""
        spec = self.spec_for(c, path)
        if spec is None:
            return None
        if c.sha256 not in self.failed:
            row = self.ctx.store.get_path(path)
            folder = row.folder if row else os.path.dirname(path)
            try:
                # Untimed, in the folder's threads: encoding takes minutes, and a hung
                # share stalls only its own folder.
                return await self.ctx.fs.call(folder, self.cache.get_or_make, path,
                                              c.sha256, spec, timeout=None)
            except OSError as e:
                raise ProxySpace(e) from e
            except ProxyFailed as e:
                self.failed[c.sha256] = str(e)
                log.warning("%s: no upload proxy could be made (%s); trying the original",
                            os.path.basename(path), e)
        if c.size > MAX_FILE_BYTES:
            raise NoUpload(f"no upload proxy could be made ({self.failed[c.sha256]}), and the "
                           f"original is too large: {human_bytes(c.size)}; the File API takes "
                           f"at most {human_bytes(MAX_FILE_BYTES)} per file")
        return None

    def why_not(self, sha: str) -> str:
        """"; no upload proxy could be made either (why)", or "" (a verdict's tail)."""
        why = self.failed.get(sha)
        return f"; no upload proxy could be made either ({why})" if why else ""
