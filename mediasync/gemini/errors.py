"""The one error type of the HTTP boundary, parsed from Google's error JSON.

Transport failures (time-outs, refused or broken connections) that outlive the
retry policy surface as :class:`TransportError`, an ``ApiError`` with ``code`` 0
and ``status`` ``"DEADLINE_EXCEEDED"`` or ``"UNAVAILABLE"``, so callers need one
``except`` clause.
"""

from __future__ import annotations

import json
from typing import Any

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
_KEY_REASONS = frozenset(
    {
        "API_KEY_INVALID",
        "API_KEY_EXPIRED",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
    }
)
_TRANSIENT_CODES = frozenset({500, 502, 503, 504})


def parse_duration(value: Any) -> float | None:
    """A protobuf Duration as JSON ("28s", "1.5s", "0.200s") in seconds."""
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    try:
        return float(value[:-1])
    except ValueError:
        return None


class ApiError(Exception):
    """An answer other than HTTP 200, or a transport failure (code 0)."""

    def __init__(
        self,
        code: int,
        status: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        self.code = code
        self.status = status
        self.message = message
        self.details: list[dict[str, Any]] = list(details or [])
        super().__init__(code, status, message)

    def __str__(self) -> str:
        return f"{self.code} {self.status}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.status!r}, {self.message!r})"

    # -- parsed details -------------------------------------------------------
    def _details_of(self, type_url: str) -> list[dict[str, Any]]:
        return [d for d in self.details if isinstance(d, dict) and d.get("@type") == type_url]

    @property
    def retry_delay(self) -> float | None:
        """Seconds from RetryInfo.retryDelay, when the server named one."""
        for d in self._details_of(_RETRY_INFO):
            delay = parse_duration(d.get("retryDelay"))
            if delay is not None:
                return max(0.0, delay)
        return None

    @property
    def reason(self) -> str | None:
        """The ErrorInfo reason, e.g. ``API_KEY_INVALID``."""
        for d in self._details_of(_ERROR_INFO):
            if d.get("reason"):
                return str(d["reason"])
        return None

    # -- classification -------------------------------------------------------
    @property
    def key_invalid(self) -> bool:
        """A bad, expired or missing key: a configuration fault, never retried."""
        if self.reason in _KEY_REASONS or self.code == 401:
            return True
        msg = self.message.lower()
        return self.code in (400, 403) and ("api key" in msg or "unregistered callers" in msg)

    @property
    def file_gone(self) -> bool:
        """403 about a file: missing, deleted, expired or another project's."""
        return self.code == 403 and not self.key_invalid and "file" in self.message.lower()

    @property
    def quota_exceeded(self) -> bool:
        """429 carrying a QuotaFailure detail (a rate or storage quota)."""
        return self.code == 429 and bool(self._details_of(_QUOTA_FAILURE))

    @property
    def storage_full(self) -> bool:
        """The 20 GB project storage quota: waiting a few seconds will not help."""
        for d in self._details_of(_QUOTA_FAILURE):
            for v in d.get("violations") or []:
                if "FileStorageBytes" in json.dumps(v):
                    return True
        return False

    @property
    def retryable(self) -> bool:
        if self.code == 0 or self.code in _TRANSIENT_CODES:
            return True
        return self.code == 429 and not self.storage_full

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_body(cls, http_status: int, body: bytes, *, secret: str | None = None) -> ApiError:
        """Parse ``{"error": {...}}``; tolerate empty or non-JSON bodies."""
        error: dict[str, Any] = {}
        try:
            parsed = json.loads(body) if body else {}
            if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
                error = parsed["error"]
        except (ValueError, UnicodeDecodeError):
            pass
        message = str(error.get("message") or "")
        if not message and body and not error:
            message = body[:200].decode("utf-8", "replace")
        if secret:  # never let a server echo put the key in a log line
            message = message.replace(secret, "***")
        details = error.get("details")
        return cls(
            code=http_status,
            status=str(error.get("status") or _default_status(http_status)),
            message=message,
            details=details if isinstance(details, list) else None,
        )


class TransportError(ApiError):
    """No HTTP answer at all: time-out (DEADLINE_EXCEEDED) or connection (UNAVAILABLE)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(0, status, message)


class UploadSessionLost(ApiError):
    """The server no longer knows the upload URL: start a new upload."""


class ProtocolError(ApiError):
    """The server answered 200 but broke the upload protocol (e.g. no status header)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "INTERNAL", message)

    @property
    def retryable(self) -> bool:
        return False


def _default_status(code: int) -> str:
    return {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        409: "ALREADY_EXISTS",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        501: "NOT_IMPLEMENTED",
        502: "UNAVAILABLE",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }.get(code, "UNKNOWN")
