"""Counts of the daemon's API traffic for /metrics and /healthz (issue 19), kept in one
place: httpx's event hooks on the client the daemon builds see every request and
answer, so nothing in the engine or the client counts for us.

What they count resets with the process (see report/metrics.py for what survives).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from mediasync.gemini import ApiError
from mediasync.gemini.quota import violations
from mediasync.report.metrics import Traffic


def _model(path: str) -> str | None:
    """The model of a generateContent URL (…/models/gemini-2.5-flash:generateContent)."""
    tail = path.rpartition("/models/")[2]
    return tail.partition(":")[0] if ":generateContent" in path and tail else None


def quota_kinds(status: int, body: bytes) -> list[str]:
    """The quotas a 429 names (rpm, tpm, rpd, storage, other), or ["unnamed"]."""
    error = ApiError.from_body(status, body)
    kinds = sorted({v.kind for v in violations(error.details, error.message)})
    return kinds or ["unnamed"]


class TrafficCounter:
    """Fills a :class:`Traffic` from the hooks of :meth:`hooks`."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.traffic = Traffic(started_at=clock())

    def hooks(self) -> dict[str, list[Any]]:
        """httpx event hooks for ``make_client(..., event_hooks=…)``."""
        return {"response": [self._response]}

    def renewed(self) -> None:
        self.traffic.renewals += 1

    async def _response(self, response: httpx.Response) -> None:
        t, request = self.traffic, response.request
        path = request.url.path
        command = request.headers.get("x-goog-upload-command", "")
        model = _model(path)
        ok = response.status_code == 200
        if ok:
            t.last_api_success = self.clock()
        if "upload" in command and ok:
            received = response.headers.get("x-goog-upload-size-received")
            offset = int(request.headers.get("x-goog-upload-offset") or 0)
            sent = int(request.headers.get("content-length") or 0)
            t.upload_bytes += max(0, int(received) - offset) if received and \
                received.isdigit() else sent
            if "finalize" in command:
                t.uploads += 1
        elif request.method == "GET" and path.endswith("/files") and ok:
            body = await response.aread()
            if b'"nextPageToken"' not in body:  # the listing's last page: it is complete
                t.last_listing = self.clock()
        if response.status_code == 429:
            body = await response.aread()
            for kind in quota_kinds(429, body):
                t.refusals[(model or "files", kind)] += 1
        if model is not None and not ok:
            t.generations[(model, "refused" if response.status_code == 429 else "error")] += 1
