"""GeminiClient: the asyncio HTTP boundary to the Gemini File API.

Knows the wire protocol only — nothing of folders, sidecars or the database.
The API key travels in ``x-goog-api-key`` on API requests, never on upload
chunk/query requests (the upload URL authorises those), and never appears in
repr(), exception text or log lines.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from .errors import ApiError, TransportError
from .limits import FILES, MAX_QUOTA_RETRIES, Budgets, generate_class
from .models import File, Generation, UploadSession, UploadStatus, file_name, json_object
from .resumable import ProgressCallback, ResumableUpload
from .retry import RetryPolicy

log = logging.getLogger("mediasync.gemini")


class _Secret:
    """Holds the key so that no repr() or vars() dump can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"


def _prompt_tokens(response: httpx.Response) -> int:
    try:
        usage = response.json().get("usageMetadata") or {}
        return int(usage.get("promptTokenCount") or 0)
    except (ValueError, AttributeError, TypeError):
        return 0


def _generate_body(
    file_uri: str,
    mime_type: str,
    prompt: str,
    generation_config: dict[str, Any] | None,
    system_instruction: str | None,
) -> dict[str, Any]:
    """The generateContent request: the file, then the prompt, in one user turn."""
    body: dict[str, Any] = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"file_data": {"mime_type": mime_type, "file_uri": file_uri}},
                    {"text": prompt},
                ],
            }
        ]
    }
    if generation_config:
        body["generationConfig"] = generation_config
    if system_instruction:
        body["systemInstruction"] = {"parts": [{"text": system_instruction}]}
    return body


class GeminiClient:
    """Transport, pacing and retries; files, generation; uploads via ResumableUpload."""

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
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._key = _Secret(api_key)
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version.strip("/")
        self.retry = retry or RetryPolicy()
        # Pacing by class (files; generation per model); None: unpaced (tests, tools).
        self.budgets = budgets
        self.on_usage: Callable[[str, Any], None] | None = None  # cost accounting
        self.chunk_size = chunk_size
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        self._uploads = ResumableUpload(self)

    def __repr__(self) -> str:
        return f"GeminiClient(base_url={self.base_url!r}, api_version={self.api_version!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> GeminiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- transport ------------------------------------------------------------
    def _url(self, path: str) -> str:
        return f"{self.base_url}/{self.api_version}/{path}"

    def _error(self, response: httpx.Response) -> ApiError:
        return ApiError.from_body(response.status_code, response.content, secret=self._key.get())

    async def _send(
        self,
        method: str,
        url: str,
        *,
        api: bool,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One HTTP exchange; transport failures become TransportError."""
        headers = dict(headers or {})
        if api:
            headers["x-goog-api-key"] = self._key.get()
        try:
            return await self._http.request(method, url, headers=headers, **kwargs)
        except httpx.TimeoutException as e:
            raise TransportError("DEADLINE_EXCEEDED", self._describe(e)) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as e:
            raise TransportError("UNAVAILABLE", self._describe(e)) from None

    def _describe(self, e: Exception) -> str:
        return f"{type(e).__name__}: {e}".replace(self._key.get(), "***")

    async def _backoff(self, op: str, error: ApiError, attempt: int) -> None:
        """Wait before the next try, or re-raise when the policy says stop."""
        if not self.retry.should_retry(error, attempt):
            raise error
        wait = self.retry.delay(error, attempt)
        log.info("%s failed (%s); retry %d in %.2fs", op, error, attempt, wait)
        await self.retry.sleep(wait)

    async def _call(
        self,
        op: str,
        method: str,
        url: str,
        *,
        limited: bool = True,
        budget: str = FILES,
        on_success: Callable[[httpx.Response], int] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """An API request (key, pacing, retries); returns only a 200 answer.

        With ``budgets``, the request is paced in its class (``budget``) and a 429
        teaches that class its limit instead of slowing every caller; a 429 is then
        retried after the class's own wait, without using up the attempts.
        ``on_success`` returns the prompt tokens of an answer (token pacing).
        """
        attempt = quota_tries = 0
        budgets = self.budgets
        while True:
            attempt += 1
            if budgets is not None:
                if limited or attempt > 1 or quota_tries:
                    await budgets.acquire(budget)
            try:
                response = await self._send(method, url, api=True, **kwargs)
                if response.status_code == 200:
                    if budgets is not None:
                        budgets.done(budget, on_success(response) if on_success else 0)
                    return response
                error = self._error(response)
            except TransportError as e:
                error = e
            if budgets is not None and error.code == 429 and not error.storage_full:
                wait = budgets.learn(budget, error)  # raises QuotaPaused for the day
                quota_tries += 1
                if quota_tries < MAX_QUOTA_RETRIES:
                    attempt -= 1
                    log.info("%s refused (429); %s", op,
                             f"holding {wait:.0f}s" if wait else "pacing to the learned limit")
                    continue
            await self._backoff(op, error, attempt)

    # -- files ----------------------------------------------------------------
    def file_uri(self, name: str) -> str:
        """The URI the service would give a file (for answers that left ``uri`` out)."""
        return self._url(file_name(name))

    async def get_file(self, name: str) -> File:
        response = await self._call("files.get", "GET", self._url(file_name(name)))
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
        files: list[File] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"pageSize": page_size}
            if token:
                params["pageToken"] = token
            # One listing is one use of the budget, however many pages it takes:
            # a periodic refresh of thousands of files must not starve generation.
            response = await self._call(
                "files.list", "GET", self._url("files"), limited=token is None, params=params
            )
            data = json_object(response.content)
            files.extend(File.from_json(f) for f in data.get("files") or [] if isinstance(f, dict))
            token = data.get("nextPageToken")
            if not token:
                return files

    async def delete_file(self, name: str) -> None:
        """Delete a file. If a retried delete lost its first answer, the retry may
        raise ApiError with ``file_gone``: callers should treat that as done."""
        await self._call("files.delete", "DELETE", self._url(file_name(name)))

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
    ) -> Generation:
        model = model.removeprefix("models/")
        body = _generate_body(file_uri, mime_type, prompt, generation_config, system_instruction)
        url = self._url(f"models/{model}:generateContent")
        response = await self._call("generateContent", "POST", url, json=body,
                                    budget=generate_class(model), on_success=_prompt_tokens)
        gen = Generation.from_json(json_object(response.content))
        if self.on_usage is not None:
            self.on_usage(model, gen.usage)
        return gen

    # -- resumable upload (the protocol lives in resumable.py) ----------------
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
