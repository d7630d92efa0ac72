"""What every part of the remote copy works with, in one small object.

The Mirror makes one and hands the same object to each part (uploads, renewals,
refresh, incomplete answers): a reload that swaps the client, the upload slots or
``renew_before`` changes them for all of them at once.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mediasync.gemini import GeminiClient
from mediasync.local.folderio import FolderIO
from mediasync.store import Store


@dataclass
class RemoteContext:
    client: GeminiClient  # replaced on reload (a new key or service)
    store: Store
    clock: Callable[[], float]  # wall clock: expiry times are the service's
    sleep: Callable[[float], Awaitable[None]]
    fs: FolderIO  # every file call into a watched folder (hung shares)
    instance: str | None  # in display names: whose copies a refresh may delete
    upload_slots: asyncio.Semaphore  # replaced on reload (max_uploads)
    renew_before: float  # changed on reload
    jitter: Callable[[], float] = field(default=random.random)

    def label(self, sha: str) -> str:
        """How log lines name a content: one of its files, else its hash's start."""
        paths = self.store.live_paths_for(sha)
        return os.path.basename(paths[0]) if paths else sha[:12]
