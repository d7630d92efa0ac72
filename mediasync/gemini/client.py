"""GeminiClient: the asyncio HTTP boundary to the Gemini File API.

Knows the wire protocol only — nothing of folders, sidecars or the database.
Every request goes through its Transport (key, pacing, retries; transport.py),
which the ResumableUpload shares.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import httpx

from . import batches, catalog
from .batches import BatchJob
from .errors import ApiError
from .models import (
    File,
    Generation,
    ModelInfo,
    UploadSession,
    UploadStatus,
    file_name,
    json_object,
)
from .pacing import Budgets, ConfigPaused, Pause, generate_class, tier_pause
from .resumable_upload import ProgressCallback, ResumableUpload
from .retry import RetryPolicy
from .tiers import FLEX, FlexFallback, flex_refusal
from .transport import Transport

# Flex calls are refused, not retried in the call: the tier is shedding load, and a
# try a second later meets the same load (the output is tried again later).
_FLEX_RETRY = RetryPolicy(max_attempts=1)
FLEX_TIMEOUT = 1200.0  # Flex answers in 1–15 minutes

# (the model that served, its usage, the tier that served or was asked for)
UsageHook = Callable[[str, Any, str], None]


def _prompt_tokens(response: httpx.Response) -> int:
    try:
        usage = response.json().get("usageMetadata") or {}
        return int(usage.get("promptTokenCount") or 0)
    except (ValueError, AttributeError, TypeError):
        return 0


def _offset(seconds: float) -> str:
    """A protobuf Duration in JSON: seconds with up to 9 fractional digits and an "s"."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _generate_body(
    file_uri: str,
    mime_type: str,
    prompt: str,
    generation_config: dict[str, Any] | None,
    system_instruction: str | None,
    service_tier: str | None = None,
    clip: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The generateContent request: the file, then the prompt, in one user turn.
    ``clip``: (start, end) seconds of a video the answer is about (Part.videoMetadata)."""
    part: dict[str, Any] = {"file_data": {"mime_type": mime_type, "file_uri": file_uri}}
    if clip is not None:
        part["videoMetadata"] = {"startOffset": _offset(clip[0]), "endOffset": _offset(clip[1])}
    body: dict[str, Any] = {
        "contents": [
            {
                "role": "user",
                "parts": [part, {"text": prompt}],
            }
        ]
    }
    if generation_config:
        body["generationConfig"] = generation_config
    if system_instruction:
        body["systemInstruction"] = {"parts": [{"text": system_instruction}]}
    if service_tier:
        body["serviceTier"] = service_tier  # top-level, not in generationConfig
    return body


class Gate(Protocol):
    """What may hold a generation before it goes out (the owner's daily cap)."""

    async def admit(self, model: str) -> Any:
        """A ticket for one call, or raises QuotaPaused."""

    async def release(self, ticket: Any) -> None:
        """The call ended (its usage is counted already)."""

    def paused(self, model: str) -> Pause | None:
        """Why no call of ``model`` would be admitted now, or None."""


class GeminiClient:
    """Files and generation; uploads via ResumableUpload; requests via Transport."""

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://generativelanguage.googleapis.com",
        api_version: str = "v1beta",
        *,
        retry: RetryPolicy | None = None,
        budgets: Budgets | None = None,
        timeout: float = 60.0,
        chunk_size: int = 8 * 1024 * 1024,
        http: httpx.AsyncClient | None = None,
        flex: FlexFallback | None = None,
        flex_timeout: float = FLEX_TIMEOUT,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        # Pacing by class (files; generation per model); None: unpaced (tests, tools).
        self.transport = Transport(
            api_key, base_url, api_version, retry=retry or RetryPolicy(), budgets=budgets,
            http=http or httpx.AsyncClient(timeout=httpx.Timeout(timeout)),
        )
        self.on_usage: UsageHook | None = None  # cost accounting
        self.flex = flex or FlexFallback()
        self.flex_timeout = flex_timeout
        self.gate: Gate | None = None  # holds a generation before it goes out (daily cap)
        self._uploads = ResumableUpload(self.transport, chunk_size)

    @property
    def base_url(self) -> str:
        return self.transport.base_url

    @property
    def api_version(self) -> str:
        return self.transport.api_version

    @property
    def budgets(self) -> Budgets | None:
        return self.transport.budgets

    @property
    def retry(self) -> RetryPolicy:
        return self.transport.retry

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        # A command someone waits for swaps in a shorter policy (commands/common.py).
        self.transport.retry = policy

    def __repr__(self) -> str:
        return f"GeminiClient(base_url={self.base_url!r}, api_version={self.api_version!r})"

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> GeminiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- files ----------------------------------------------------------------
    def file_uri(self, name: str) -> str:
        """The URI the service would give a file (for answers that left ``uri`` out)."""
        return self.transport.url(file_name(name))

    async def get_file(self, name: str) -> File:
        url = self.transport.url(file_name(name))
        response = await self.transport.call("files.get", "GET", url)
        return File.from_json(json_object(response.content))

    async def wait_processed(
        self,
        name: str,
        *,
        first: float = 0.1,
        cap: float = 10.0,
        limit: float = 3600.0,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> File:
        """Poll ``files.get`` until the file leaves PROCESSING (ACTIVE, FAILED, or a
        state the answer did not name, which the caller judges).

        Quick at first (images are ready within a second), then ×1.5 up to
        ``cap`` for long videos; gives up with DEADLINE_EXCEEDED after ``limit``.
        """
        sleep = sleep or asyncio.sleep
        delay, waited = first, 0.0
        while True:
            file = await self.get_file(name)
            if file.state != "PROCESSING":
                return file
            if waited >= limit:
                raise ApiError(504, "DEADLINE_EXCEEDED", f"{file.name} still PROCESSING")
            await sleep(delay)
            waited += delay
            delay = min(cap, delay * 1.5)

    async def list_files(self, page_size: int = 100) -> list[File]:
        """Every page; the service answers ``{}`` when there are no files."""
        return [f async for page in self.file_pages(page_size) for f in page]

    async def file_pages(self, page_size: int = 100) -> AsyncIterator[list[File]]:
        """The listing a page at a time (a library of 100,000 is 1,000 pages)."""
        async for page in self.transport.each_page("files.list", "files", "files", page_size):
            yield [File.from_json(f) for f in page]

    async def delete_file(self, name: str) -> None:
        """Delete a file. If a retried delete lost its first answer, the retry may
        raise ApiError with ``file_gone``: callers should treat that as done."""
        await self.transport.call("files.delete", "DELETE", self.transport.url(file_name(name)))

    # -- models -----------------------------------------------------------------
    async def list_models(self) -> list[ModelInfo]:
        """Every model the key may use, every page."""
        return await catalog.list_models(self.transport)

    async def get_model(self, model: str) -> ModelInfo:
        """One model; ApiError 404 (``model_missing``) when retired or unknown."""
        return await catalog.get_model(self.transport, model)

    # -- batches (the protocol lives in batches.py) ----------------------------
    async def create_batch(self, model: str, display_name: str, *, file_name: str | None = None,
                           requests: list[dict[str, Any]] | None = None) -> BatchJob:
        """A batch job from a JSONL file (``file_name``) or inline ``requests``; never
        retried in the call (create is not idempotent)."""
        return await batches.create(self.transport, model, display_name, file_name=file_name,
                                    requests=requests)

    async def get_batch(self, name: str) -> BatchJob:
        return await batches.get(self.transport, name)

    async def list_batches(self) -> list[BatchJob]:
        return await batches.list_jobs(self.transport)

    async def cancel_batch(self, name: str) -> None:
        await batches.cancel(self.transport, name)

    async def delete_batch(self, name: str) -> None:
        await batches.delete(self.transport, name)

    async def download(self, file_name: str) -> bytes:
        """The bytes of a file the service made (a batch's results file)."""
        return await batches.download(self.transport, file_name)

    @staticmethod
    def generate_request(file_uri: str, mime_type: str, prompt: str,
                         generation_config: dict[str, Any] | None,
                         system_instruction: str | None) -> dict[str, Any]:
        """The GenerateContentRequest :meth:`generate` sends, for a batch's lines."""
        return _generate_body(file_uri, mime_type, prompt, generation_config,
                              system_instruction)

    # -- generation -----------------------------------------------------------
    async def generate(
        self,
        model: str,
        *,
        file_uri: str,
        mime_type: str,
        prompt: str,
        generation_config: dict[str, Any] | None = None,
        system_instruction: str | None = None,
        service_tier: str | None = None,
        clip: tuple[float, float] | None = None,
    ) -> Generation:
        """One answer. ``service_tier``: "flex", "standard" or "priority" (None: the
        service's default). A Flex call gets a time-out sized for minutes, is not
        retried when refused, and may fall back to standard (:class:`FlexFallback`)."""
        model = model.removeprefix("models/")
        budgets = self.budgets
        if service_tier and budgets is not None:
            held = budgets.holding(f"tier:{service_tier}")
            if held is not None:
                raise ConfigPaused(held)
        tier = self.flex.tier(model, service_tier)
        body = _generate_body(file_uri, mime_type, prompt, generation_config,
                              system_instruction, tier, clip)
        url = self.transport.url(f"models/{model}:generateContent")
        extra: dict[str, Any] = {}
        if tier == FLEX:
            extra = {"retry": _FLEX_RETRY, "flex": True,
                     "timeout": httpx.Timeout(self.flex_timeout, connect=30.0)}
        # The owner's daily cap holds the call before it goes out; its share is freed
        # once the answer's usage is in the ledger, or the call failed.
        ticket = await self.gate.admit(model) if self.gate is not None else None
        gen: Generation | None = None
        try:
            response = await self.transport.call(
                "generateContent", "POST", url, json=body, budget=generate_class(model),
                on_success=_prompt_tokens, **extra)
            if tier == FLEX:
                self.flex.served(model)
            gen = Generation.from_json(
                json_object(response.content),
                tier_header=response.headers.get("x-gemini-service-tier"))
            # The tier that served it, as the answer says; else the one asked for.
            gen = dataclasses.replace(gen, service_tier=gen.service_tier or tier or "standard")
            if self.on_usage is not None:
                # Billed as the model and tier that served it (a silent re-route shows in
                # modelVersion), else the ones asked for.
                self.on_usage(gen.model_version or model, gen.usage, gen.service_tier)
        except ApiError as e:
            if tier == FLEX and flex_refusal(e):
                if not self.flex.refused(model, e):
                    raise
                # refused on Flex: asked again on standard, below
            elif tier and e.tier_refused and not isinstance(e, ConfigPaused):
                if budgets is not None:
                    raise ConfigPaused(budgets.hold(
                        tier_pause(tier, str(e), budgets.clock()))) from None
                raise
            else:
                raise
        finally:
            if self.gate is not None:
                await self.gate.release(ticket)
        if gen is None:
            return await self.generate(
                model, file_uri=file_uri, mime_type=mime_type, prompt=prompt,
                generation_config=generation_config, system_instruction=system_instruction,
                service_tier=service_tier, clip=clip)
        return gen

    def paused(self, model: str) -> Pause | None:
        """Why generation with ``model`` is held now (a day's quota, the owner's cap
        under the current config), or None."""
        model = model.removeprefix("models/")
        held = self.budgets.paused(generate_class(model)) if self.budgets is not None else None
        if held is None and self.gate is not None:
            held = self.gate.paused(model)
        return held

    # -- resumable upload (the protocol lives in resumable_upload.py) ---------
    async def start_upload(
        self,
        *,
        size: int,
        mime_type: str,
        display_name: str | None = None,
        name: str | None = None,
    ) -> UploadSession:
        return await self._uploads.start(size, mime_type, display_name, name)

    async def query_upload(self, url: str) -> UploadStatus:
        """Ask the server how far an upload got. Raises UploadSessionLost if it
        no longer knows the URL (any non-retryable error answer)."""
        return await self._uploads.query(url)

    async def upload(
        self,
        path: str | os.PathLike[str],
        mime_type: str,
        display_name: str | None = None,
        *,
        session: UploadSession | None = None,
        on_progress: ProgressCallback | None = None,
        name: str | None = None,
    ) -> File:
        """Upload a file, streaming from disk; resume ``session`` when given.

        ``on_progress(session, offset)`` runs right after start (offset 0), so
        the caller can persist the URL before any byte, after a resume query,
        and after every acknowledged chunk.
        """
        return await self._uploads.upload(
            path, mime_type, display_name, session, on_progress, name
        )
