"""The emulator's settings: one frozen dataclass, what ``mediasync emulator``'s flags fill."""

from __future__ import annotations

from dataclasses import dataclass

from mediasync.media.formats import FILE_TTL_SECONDS, MAX_FILE_BYTES, MAX_PROJECT_BYTES

from .store import Quirks

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
    # The model's own output limit (gemini-2.5-flash: 65,536 tokens); a request's
    # maxOutputTokens may lower it. A transcript longer than this is cut (MAX_TOKENS).
    output_token_limit: int = 65_536
    granularity: int = 8 * 1024 * 1024
    max_file_bytes: int = MAX_FILE_BYTES
    max_project_bytes: int = MAX_PROJECT_BYTES  # the project's store (settable: store.py)
    # A full store answered as wire/02 ("json") or with wire/03's RetryInfo of
    # INT64_MAX seconds ("retryinfo"); see errors.quota_exceeded.
    storage_form: str = "json"
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
    # Models (emulator/models.py): shut down ones (404 to every call, as wire/41), and
    # names answered by another model (old → new; modelVersion names the new one).
    retired_models: tuple[str, ...] = ()
    model_routes: tuple[tuple[str, str], ...] = ()
    # Service tiers: Flex answers after flex_latency (live: 1–15 minutes) and, with
    # flex_capacity set, refuses calls beyond that many in flight with a 503 (our
    # choice of shape: docs/service.md). priority: "refuse" (the key's tier may not use
    # it: a 400 naming the service tier), "serve", or "standard" (served at standard,
    # as the live service may silently do).
    flex_latency: float = 0.0
    flex_capacity: int | None = None
    priority: str = "refuse"
    # Batch jobs (emulator/batches.py): PENDING for batch_pending seconds, then RUNNING
    # until batch_duration after creation, then SUCCEEDED (live: up to 24 h, often less).
    batch_pending: float = 5.0
    batch_duration: float = 30.0

    @property
    def quirks(self) -> Quirks:
        return Quirks(self.hash_form, tuple(self.omit_fields))
