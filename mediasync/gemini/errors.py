"""The errors of the HTTP boundary: ApiError, parsed from Google's error JSON, and its kinds.

Transport failures (time-outs, refused or broken connections) that outlive the
retry policy surface as :class:`TransportError`, an ``ApiError`` with ``code`` 0
and ``status`` ``"DEADLINE_EXCEEDED"`` or ``"UNAVAILABLE"``, so callers need one
``except`` clause. :class:`FileChanged` is the one error about the local file.
"""

from __future__ import annotations

import json
import re
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
_STORAGE_QUOTA = ("FileStorageBytes", "file_storage_bytes")
_RETRY_IN = re.compile(r"Please retry in (\d+(?:\.\d+)?)s")
# Proto text format, as in an error surfaced through another message (wire/03).
_PROTO_VIOLATION = re.compile(r"violations\s*\{(?P<body>[^{}]*)\}")
_PROTO_FIELD = re.compile(r'(\w+):\s*(?:"([^"]*)"|(\d+))')
_PROTO_RETRY = re.compile(r"retry_delay\s*\{\s*seconds:\s*(\d+)")
# A model the service does not serve (wire/41): "models/<id> is not found for API version
# v1beta, or is not supported for generateContent. …"
_MODEL_NAMED = re.compile(r"models/([A-Za-z0-9][\w.\-]*)")
_STATUS_PREFIX = re.compile(r"\s*([A-Z][A-Z_]+[A-Z]):")
_STATUS_CODES = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "NOT_IMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


# google.rpc.Code: the codes of a bare Status (a batch results file's error lines, as
# the REST reference gives Status), where an HTTP answer's envelope has HTTP codes.
RPC_STATUS = {1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
              5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED",
              8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
              11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
              15: "DATA_LOSS", 16: "UNAUTHENTICATED"}


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# The longest a server-named delay is taken at its word. A RetryInfo is advice: the
# live storage-full answer names 9223372036854775807 s (wire/03), and a wait of
# days, or a time past what datetime can hold, helps nobody. An hour, as the
# longest backoff of our own (rules/failures.py BACKOFF_CAP).
MAX_SERVER_DELAY = 3600.0


def clamp_delay(seconds: float) -> float:
    """A server-named delay as mediasync waits it: within [0, MAX_SERVER_DELAY]; a
    value that is no number (NaN) waits nothing. The one clamp every reader of a
    RetryInfo goes through (ApiError.retry_delay)."""
    if seconds != seconds or seconds <= 0:  # NaN, negative
        return 0.0
    return min(seconds, MAX_SERVER_DELAY)


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
        """Seconds from RetryInfo.retryDelay, else from "Please retry in 47.4s." in the
        message (wire/28), when the server named one; clamped (:func:`clamp_delay`),
        so no caller ever waits days on the server's word."""
        for d in self._details_of(_RETRY_INFO):
            delay = parse_duration(d.get("retryDelay"))
            if delay is not None:
                return clamp_delay(delay)
        match = _RETRY_IN.search(self.message)
        return clamp_delay(float(match.group(1))) if match else None

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
    def file_not_active(self) -> bool:
        """400 FAILED_PRECONDITION: a file used before it is ACTIVE (wire/07)."""
        return self.code == 400 and self.status == "FAILED_PRECONDITION"

    @property
    def quota_exceeded(self) -> bool:
        """429 carrying a QuotaFailure detail (a rate or storage quota)."""
        return self.code == 429 and bool(self._details_of(_QUOTA_FAILURE))

    @property
    def storage_full(self) -> bool:
        """The 20 GB project storage quota: waiting a few seconds will not help."""
        for d in self._details_of(_QUOTA_FAILURE):
            for v in d.get("violations") or []:
                if any(word in json.dumps(v) for word in _STORAGE_QUOTA):
                    return True
        # Not as a QuotaFailure but named in the text (wire/02's message, wire/03).
        return self.code == 429 and any(word in self.message for word in _STORAGE_QUOTA)

    @property
    def model_missing(self) -> str | None:
        """The model a 404 names (retired, unknown, or not serving this method: wire/41),
        or None. A fact about the configuration, not about any file."""
        if self.code != 404:
            return None
        match = _MODEL_NAMED.search(self.message)
        return match.group(1).rstrip(".") if match else None

    @property
    def tier_refused(self) -> bool:
        """A service tier the key may not use (Priority needs paid tier 2 or 3): a 400 or
        403 that speaks of the tier, not of the key."""
        msg = self.message.lower()
        return (self.code in (400, 403) and not self.key_invalid
                and ("service tier" in msg or "service_tier" in msg or "servicetier" in msg))

    @property
    def retryable(self) -> bool:
        if self.code == 0 or self.code in _TRANSIENT_CODES:
            return True
        return self.code == 429 and not self.storage_full

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_body(cls, http_status: int, body: bytes, *, secret: str | None = None) -> ApiError:
        """Parse ``{"error": {...}}``, also wrapped in a one-element array (wire/35);
        tolerate empty, non-JSON and proto-text bodies. ``http_status`` 0 (unknown)
        takes the body's code."""
        error: dict[str, Any] = {}
        try:
            parsed = json.loads(body) if body else {}
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
            parsed = parsed[0]  # the streaming transport frames errors like its chunks
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            error = parsed["error"]
        text = parsed if isinstance(parsed, str) else None
        if text is None and not error and body:
            text = body.decode("utf-8", "replace")
        message = str(error.get("message") or "")
        details = error.get("details") if isinstance(error.get("details"), list) else None
        status = str(error.get("status") or "")
        if text is not None:
            message, status_in_text, details = _from_text(text)
            status = status or status_in_text
        code = http_status or _int_or_none(error.get("code")) or _STATUS_CODES.get(status, 0)
        if secret:  # never let a server echo put the key in a log line (wire/09 echoes it)
            message = message.replace(secret, "***")
            details = _redact(details, secret) if details else details
        return cls(
            code=code,
            status=status or _default_status(code),
            message=message,
            details=details,
        )


def _from_text(text: str) -> tuple[str, str, list[dict[str, Any]] | None]:
    """(message, status, details) of a body that is not error JSON: plain text, or
    proto text format such as ``RESOURCE_EXHAUSTED: … quota_id: "…" …`` (wire/03)."""
    match = _STATUS_PREFIX.match(text)
    status = match.group(1) if match and match.group(1) in _STATUS_CODES else ""
    details: list[dict[str, Any]] = []
    violations = []
    for v in _PROTO_VIOLATION.finditer(text):
        fields = {k: (s if s else n) for k, s, n in _PROTO_FIELD.findall(v.group("body"))}
        violations.append(
            {
                "quotaMetric": fields.get("quota_metric"),
                "quotaId": fields.get("quota_id"),
                "quotaValue": fields.get("quota_value"),
            }
        )
    if violations:
        details.append({"@type": _QUOTA_FAILURE, "violations": violations})
    delay = _PROTO_RETRY.search(text)
    if delay:
        details.append({"@type": _RETRY_INFO, "retryDelay": f"{delay.group(1)}s"})
    cut = text.find(" [type.googleapis.com/")  # the human part ends where details begin
    message = (text[:cut] if cut > 0 else text)[:500].strip()
    return message, status, details or None


def _redact(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace(secret, "***")
    if isinstance(value, list):
        return [_redact(v, secret) for v in value]
    if isinstance(value, dict):
        return {k: _redact(v, secret) for k, v in value.items()}
    return value


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


class FileChanged(OSError):
    """The local file changed under its upload (its size differs from the upload
    session's, or it shrank while read): start over. Not an ApiError: the service
    said nothing."""


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


def from_status(status: dict[str, Any]) -> ApiError:
    """An error from a ``Status`` object of either form: ``{"code": 7, "message"}`` (a
    google.rpc.Code) or the HTTP envelope's ``{"code": 403, "status": "PERMISSION_DENIED",
    "message"}``. An rpc code becomes the HTTP code the service answers it with (an
    unknown one 500: transient, never a verdict on the file)."""
    code = _int_or_none(status.get("code")) or 0
    name = str(status.get("status") or "")
    if 0 < code < 100:
        name = name or RPC_STATUS.get(code, "UNKNOWN")
        code = _STATUS_CODES.get(name, 500)
    details = status.get("details")
    return ApiError(code, name or "UNKNOWN", str(status.get("message") or "error"),
                    details if isinstance(details, list) else [])
