"""What a request reads and changes: settings, clock, files, faults, quotas, counts.

The server holds this, not the :class:`~mediasync.emulator.app.Emulator`, so the
HTTP layer needs nothing of the lifecycle that starts it (and imports nothing back).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from .batches import Batches
from .config import EmulatorConfig
from .faults import FaultSet
from .models import Catalog
from .quota import QuotaLimits, Quotas
from .store import Clock, Store


class EmulatorState:
    """One emulator's settings and tables; every part is thread-safe."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.quirks = config.quirks  # validated once, used per answer
        self.clock = Clock()
        self.faults = FaultSet()
        self.quota = Quotas(QuotaLimits(config.quota_rpm, config.quota_tpm, config.quota_rpd,
                                        config.quota_tier, config.quota_shape))
        self.store = Store(
            self.clock,
            ttl=config.ttl,
            processing_delay=config.processing_delay,
            video_processing_delay=config.video_processing_delay,
            max_file_bytes=config.max_file_bytes,
            max_project_bytes=config.max_project_bytes,
            storage_form=config.storage_form,
        )
        self._requests: Counter[str] = Counter()
        self._generated: Counter[str] = Counter()  # answers per content (sha256 hex)
        self._count_lock = threading.Lock()
        self.models = Catalog.default(config.retired_models, dict(config.model_routes))
        # Tiers, changeable while serving (POST /_emulator/tiers).
        self.flex_latency = config.flex_latency
        self.flex_capacity = config.flex_capacity
        self.priority = config.priority
        self.flex_in_flight = 0
        self.tiers: Counter[str] = Counter()  # generate calls served per tier, and refusals
        self.models_asked: Counter[str] = Counter()  # generate calls per model asked for
        self.batches = Batches(self.clock, self.store, self.models,
                               pending=config.batch_pending, duration=config.batch_duration)

    def flex_enter(self) -> bool:
        """Take a Flex slot; False when the tier is at capacity (refuse the call)."""
        with self._count_lock:
            if self.flex_capacity is not None and self.flex_in_flight >= self.flex_capacity:
                self.tiers["flex_refused"] += 1
                return False
            self.flex_in_flight += 1
            return True

    def flex_leave(self) -> None:
        with self._count_lock:
            self.flex_in_flight -= 1

    def asked(self, model: str) -> None:
        """A generate call arrived for ``model`` (served or not: retired ones count)."""
        with self._count_lock:
            self.models_asked[model] += 1

    def served(self, tier: str) -> None:
        with self._count_lock:
            self.tiers[tier] += 1

    def count(self, endpoint: str) -> None:
        with self._count_lock:
            self._requests[endpoint] += 1

    def generated(self, records: list[Any]) -> None:
        """One answer about these files (counted per content, for "paid once" checks)."""
        with self._count_lock:
            for rec in records:
                self._generated[rec.sha256.hex()] += 1

    def stats(self) -> dict[str, Any]:
        files = self.store.files()
        with self._count_lock:
            requests = dict(self._requests)
            generated = dict(self._generated)
        return {
            **self.store.counters,
            "bytes_received": self.store.bytes_received,
            "requests": requests,
            "generated": generated,
            "faults_fired": self.faults.fired,
            "live_files": len(files),
            "live_bytes": sum(f.size for f in files),
            "quota": self.quota.stats(),
            "models": self.models.to_dict(),
            "generate_by_model": dict(self.models_asked),
            "tiers": dict(self.tiers),
            "batches_created": self.batches.created,
            "batch_requests": sum(len(j.requests) for j in self.batches.jobs()),
        }

    def list_files(self, base: str, ver: str = "v1beta") -> list[dict[str, Any]]:
        """Snapshot of the live File resources, oldest first, their URIs under ``base``."""
        now = self.clock.now()
        return [f.resource(now, base, ver, self.quirks) for f in self.store.files()]
