"""What the engine's parts are given instead of the engine: a context they read
(config, store, client, folder I/O, clocks) and the queue they ask to look at a
path again. Each part gets these, plus the few sibling callables it uses, in its
constructor (as httpx hands a transport its pool, or APScheduler 4 a data store
its event broker), so every part reads on its own.

Imports none of the parts: they all import this.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from mediasync.config import Config
from mediasync.gemini import GeminiClient
from mediasync.local.folderio import FolderIO
from mediasync.store import Store

UNAVAILABLE_RETRY = 60.0  # seconds before a path in a folder that did not answer is looked at


class Requeue(Protocol):
    """The engine's queue as its parts use it: look at a path again, say a problem once."""

    def schedule(self, path: str, due: float) -> None:
        """Look at ``path`` at monotonic time ``due`` (in `sync` too)."""

    def later(self, path: str, at_wall: float | None) -> None:
        """Look at ``path`` at a wall-clock time (retries); never in `sync`."""

    def mark_dirty(self, path: str, *, event: bool = True) -> None:
        """``path`` may have changed; ``event``: the watcher saw it (its stat is stale)."""

    def sweep_soon(self, delay: float) -> None:
        """Forget vanished paths and retire unneeded contents within ``delay`` seconds."""

    def note(self, key: str, what: str, msg: str, *args: object) -> None:
        """Log a problem once per ``(key, what)``, not on every rescan."""


class Live:
    """What a reload (SIGHUP) replaces: the config, what is derived from it, the API
    client. Read through :class:`Context`; only the engine changes it."""

    def __init__(self, config: Config, client: GeminiClient) -> None:
        self.client = client
        self.reload(config)

    def reload(self, config: Config) -> None:
        self.config = config
        self.suffixes = config.sidecar_suffixes()
        # New bounds for new work; steps holding a slot of the old ones finish as they are.
        self.upload_slots = asyncio.Semaphore(config.daemon.max_uploads)
        self.generate_slots = asyncio.Semaphore(config.daemon.max_generations)


@dataclass(frozen=True, eq=False)
class Context:
    """What every part of the engine reads. Fixed for the engine's life, except what
    :class:`Live` holds: ``config`` and ``client`` are always the current ones."""

    store: Store
    # Every file call that touches a watched folder goes through here (hung shares).
    fs: FolderIO
    live: Live = field(repr=False)
    once: bool = False  # `sync`: no retries scheduled for later, vanished paths swept at once
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic

    @classmethod
    def of(
        cls,
        config: Config,
        store: Store,
        client: GeminiClient,
        *,
        fs: FolderIO | None = None,
        once: bool = False,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> Context:
        return cls(store, fs or FolderIO(), Live(config, client), once, clock, monotonic)

    @property
    def config(self) -> Config:
        return self.live.config

    @property
    def client(self) -> GeminiClient:
        return self.live.client

    @property
    def suffixes(self) -> frozenset[str]:
        """The configured sidecar suffixes: files ending so are outputs, not media."""
        return self.live.suffixes

    @property
    def generate_slots(self) -> asyncio.Semaphore:
        """Generations under way at once (``daemon.max_generations``)."""
        return self.live.generate_slots
