"""The halt of every API call while the key is refused: said once, kept in the
store for `status`, lifted when a call succeeds again or the config is reloaded.
"""

from __future__ import annotations

import logging

from mediasync.gemini import ApiError
from mediasync.rules.failures import classify
from mediasync.store import Meta, Store

log = logging.getLogger("mediasync")


class Halt:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._why: str | None = None
        # A new process tries the key afresh; a key still refused halts again on its
        # first call. Without this, `status` would show a halt an earlier run left.
        store.write(Meta.HALTED, "")

    @property
    def why(self) -> str | None:
        """Why API calls are halted (the key was refused), or None."""
        return self._why

    def set(self, why: str | None) -> None:
        # One truth: every change writes through to the store `status` reads, so a
        # reload that clears the halt clears it there too.
        self._why = why or None
        self._store.write(Meta.HALTED, why or "")

    def __call__(self, error: ApiError) -> None:
        """An API error no step could place: a refused key halts every call (said once);
        anything else is logged."""
        if classify(error) != "auth":
            log.error("unexpected API error: %s", error)
            return
        if not self._why:
            self.set(
                f"the API key was refused ({error.reason or error.status}); "
                "fix it and reload (systemctl reload mediasync)"
            )
            log.error("%s", self._why)
