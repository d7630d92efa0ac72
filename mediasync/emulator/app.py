"""The emulator object: configuration, lifecycle and the Python control API."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mediasync.media.formats import FILE_TTL_SECONDS, MAX_FILE_BYTES, MAX_PROJECT_BYTES

from .faults import Fault, FaultSet
from .quota import QuotaLimits, Quotas
from .server import Server
from .store import Clock, Quirks, Store

VIDEO_PROCESSING_DELAY = 0.5  # short: the live ~8 s (wire/12) would slow every test


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = any free port
    key: str | None = None  # None: any non-empty key is accepted
    ttl: float = float(FILE_TTL_SECONDS)
    # Images and audio are ACTIVE in the finalize answer, video PROCESSING first
    # (wire/01, 11, 13). A processing_delay above 0 sends every kind through PROCESSING.
    processing_delay: float = 0.0
    video_processing_delay: float = VIDEO_PROCESSING_DELAY
    generate_latency: float = 0.0
    granularity: int = 8 * 1024 * 1024
    max_file_bytes: int = MAX_FILE_BYTES
    max_project_bytes: int = MAX_PROJECT_BYTES
    # Answer unlike the live service (see store.Quirks), for client robustness tests.
    hash_form: str = "hex"
    omit_fields: tuple[str, ...] = ()
    relative_upload_url: bool = False
    # The live service embeds the key of a start sent with ?key= in the upload URL
    # (wire/16); this embeds it whichever way the key came, header included.
    key_in_upload_url: bool = False
    # After a refused finalize, a query answers 200 "final" with no file instead of the
    # refusal again (files-api.md: such errors come with X-Goog-Upload-Status: final).
    empty_final_after_refusal: bool = False
    # Per-model generation quotas (emulator/quota.py); None = unlimited.
    quota_rpm: int | None = None
    quota_tpm: int | None = None
    quota_rpd: int | None = None
    quota_tier: str = "free"
    quota_shape: str = "full"

    @property
    def quirks(self) -> Quirks:
        return Quirks(self.hash_form, tuple(self.omit_fields))


class Emulator:
    """A local Gemini File API. ``start()`` serves from background threads."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.quirks = self.config.quirks  # validated once, used per answer
        self.clock = Clock()
        self.faults = FaultSet()
        c = self.config
        self.quota = Quotas(QuotaLimits(c.quota_rpm, c.quota_tpm, c.quota_rpd, c.quota_tier,
                                        c.quota_shape))
        self.store = Store(
            self.clock,
            ttl=self.config.ttl,
            processing_delay=self.config.processing_delay,
            video_processing_delay=self.config.video_processing_delay,
            max_file_bytes=self.config.max_file_bytes,
            max_project_bytes=self.config.max_project_bytes,
        )
        self._requests: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._server = Server((self.config.host, self.config.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="mediasync-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = self.config.host
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # -- control ---------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        self.faults.add(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def count(self, endpoint: str) -> None:
        with self._count_lock:
            self._requests[endpoint] += 1

    def stats(self) -> dict[str, Any]:
        files = self.store.files()
        with self._count_lock:
            requests = dict(self._requests)
        return {
            **self.store.counters,
            "bytes_received": self.store.bytes_received,
            "requests": requests,
            "faults_fired": self.faults.fired,
            "live_files": len(files),
            "live_bytes": sum(f.size for f in files),
            "quota": self.quota.stats(),
        }

    def list_files(self, ver: str = "v1beta") -> list[dict[str, Any]]:
        """Snapshot of the live File resources, oldest first."""
        now = self.clock.now()
        base = self.base_url if self._server is not None else "http://emulator"
        return [f.resource(now, base, ver, self.quirks) for f in self.store.files()]
