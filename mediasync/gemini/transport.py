"""The request core every call to the service goes through: one HTTP exchange, the
API key, pacing by class and retries with backoff.

Shared by the GeminiClient (files, generation) and the ResumableUpload (start,
query, chunks), which both hold a Transport and use only its public names. The
key travels in ``x-goog-api-key`` on API requests (``api=True``), never on upload
chunk/query requests (the upload URL authorises those), and never appears in
repr(), exception text or log lines.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from .errors import ApiError, TransportError
from .models import json_object
from .pacing import FILES, MAX_QUOTA_RETRIES, Budgets, ConfigPaused, model_pause
from .quota import violations
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


class Transport:
    """Where requests go (``base_url``, ``api_version``), with which key, how paced
    (``budgets``; None: unpaced, for tests and tools) and how retried (``retry``)."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        api_version: str,
        *,
        retry: RetryPolicy,
        budgets: Budgets | None,
        http: httpx.AsyncClient,
    ) -> None:
        self._key = _Secret(api_key)
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version.strip("/")
        self.retry = retry
        self.budgets = budgets
        self._http = http

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r}, api_version={self.api_version!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    def url(self, path: str) -> str:
        """An API URL: ``{base_url}/{api_version}/{path}``."""
        return f"{self.base_url}/{self.api_version}/{path}"

    def upload_url(self, path: str) -> str:
        """An upload endpoint's URL: ``{base_url}/upload/{api_version}/{path}``."""
        return f"{self.base_url}/upload/{self.api_version}/{path}"

    def error(self, response: httpx.Response) -> ApiError:
        """The ApiError a non-200 answer carries, with the key redacted."""
        return ApiError.from_body(response.status_code, response.content, secret=self._key.get())

    async def send(
        self,
        method: str,
        url: str,
        *,
        api: bool,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One HTTP exchange, not retried; transport failures become TransportError.
        ``api``: an API request, which carries the key (upload chunks do not)."""
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

    async def backoff(self, op: str, error: ApiError, attempt: int,
                      retry: RetryPolicy | None = None) -> None:
        """Wait before the next try, or re-raise ``error`` when the policy says stop.
        ``attempt`` counts the tries made so far."""
        retry = retry or self.retry
        if not retry.should_retry(error, attempt):
            raise error
        wait = retry.delay(error, attempt)
        log.info("%s failed (%s); retry %d in %.2fs", op, error, attempt, wait)
        await retry.sleep(wait)

    async def pages(self, op: str, path: str, field: str, page_size: int,
                    budget: str = FILES) -> list[dict[str, Any]]:
        """Every item under ``field`` of every page of a listing (``nextPageToken``)."""
        return [item async for page in self.each_page(op, path, field, page_size, budget)
                for item in page]

    async def each_page(self, op: str, path: str, field: str, page_size: int,
                        budget: str = FILES) -> AsyncIterator[list[dict[str, Any]]]:
        """The items under ``field``, a page at a time: a caller keeps what it needs of
        each page, not 100,000 parsed answers at once. One listing is one use of the
        budget, however many pages it takes: a periodic refresh of thousands of files
        must not starve generation."""
        token: str | None = None
        while True:
            params: dict[str, Any] = {"pageSize": page_size}
            if token:
                params["pageToken"] = token
            response = await self.call(op, "GET", self.url(path), limited=token is None,
                                       budget=budget, params=params)
            data = json_object(response.content)
            yield [i for i in data.get(field) or [] if isinstance(i, dict)]
            token = data.get("nextPageToken")
            if not token or not isinstance(token, str):
                return

    async def call(
        self,
        op: str,
        method: str,
        url: str,
        *,
        limited: bool = True,
        budget: str = FILES,
        on_success: Callable[[httpx.Response], int] | None = None,
        retry: RetryPolicy | None = None,
        flex: bool = False,
        quota_retries: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """An API request (key, pacing, retries); returns only a 200 answer.

        With ``budgets``, the request is paced in its class (``budget``) and a 429
        teaches that class its limit instead of slowing every caller; a 429 is then
        retried after the class's own wait, without using up the attempts.
        ``limited=False``: the first try takes no turn of the budget (a listing's
        later pages). ``on_success`` returns the prompt tokens of an answer (token
        pacing). ``retry``: this call's own policy. ``flex``: a Flex call, whose 429
        naming no quota is the tier shedding load, not a rate limit to learn.
        ``quota_retries=False``: a 429 is learned, then raised (the caller plans its
        own next try: a batch create, whose retries would hold the dispatcher).

        A generation answered 404 naming its model (wire/41) holds that model in the
        budgets (no later call goes out) and raises :class:`ConfigPaused`.
        """
        attempt = quota_tries = 0
        budgets = self.budgets
        while True:
            attempt += 1
            if budgets is not None:
                if limited or attempt > 1 or quota_tries:
                    await budgets.acquire(budget)
            try:
                response = await self.send(method, url, api=True, **kwargs)
                if response.status_code == 200:
                    if budgets is not None:
                        budgets.done(budget, on_success(response) if on_success else 0)
                    return response
                error = self.error(response)
            except TransportError as e:
                error = e
            if budgets is not None and error.model_missing and budget.startswith("generate:"):
                # The model asked for, whatever name the message gives (an alias's target).
                model = budget.partition(":")[2]
                raise ConfigPaused(budgets.hold(model_pause(model, str(error), budgets.clock())))
            shed = flex and error.code == 429 and not violations(error.details, error.message)
            if budgets is not None and error.code == 429 and not error.storage_full and not shed:
                wait = budgets.learn(budget, error)  # raises QuotaPaused for the day
                quota_tries += 1
                if quota_retries and quota_tries < MAX_QUOTA_RETRIES:
                    attempt -= 1
                    log.info("%s refused (429); %s", op,
                             f"holding {wait:.0f}s" if wait else "pacing to the learned limit")
                    continue
            await self.backoff(op, error, attempt, retry)
