"""The service's error shape: ``{"error": {"code", "message", "status", "details"}}``."""

from __future__ import annotations

import re
from typing import Any

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

NAME_RULE_MESSAGE = (
    "File name may only contain lowercase alphanumeric characters or dashes (-) "
    "and cannot begin or end with a dash."
)


class ApiError(Exception):
    """An error answer; ``headers`` are extra response headers (e.g. upload status)."""

    def __init__(
        self,
        code: int,
        message: str,
        status: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or _STATUS_NAMES.get(code, "UNKNOWN")
        self.details = details or []
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            err["details"] = self.details
        return {"error": err}


def retry_info(delay: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def file_not_found(file_id: str) -> ApiError:
    # The service answers 403, not 404, for missing, deleted and expired files.
    return ApiError(
        403,
        f"You do not have permission to access the File {file_id} or it may not exist.",
        "PERMISSION_DENIED",
    )


def not_active(file_id: str) -> ApiError:
    return ApiError(
        400,
        f"The File {file_id} is not in an ACTIVE state and usage is not allowed.",
        "FAILED_PRECONDITION",
    )


_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. "
    "For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)
_USAGE_HINT = " To monitor your current usage, head to: https://ai.dev/rate-limit. "
_METRIC = "generativelanguage.googleapis.com/"
HELP = {
    "@type": "type.googleapis.com/google.rpc.Help",
    "links": [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ],
}
# Free-tier quotas as the live 429s name them (wire/25–27): (metric, quotaId, limit,
# whether a lone violation carries quotaValue: 25 and 28 do; no per-day one was seen with it).
RATE_QUOTAS = {
    "per_minute": (
        "generate_content_free_tier_requests",
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        10,
        True,
    ),
    "per_day": (
        "generate_content_free_tier_requests",
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        250,
        False,
    ),
    "input_tokens": (
        "generate_content_free_tier_input_token_count",
        "GenerateContentInputTokensPerModelPerMinute-FreeTier",
        250000,
        True,
    ),
}


def quota_exceeded(used: int, wanted: int, limit: int) -> ApiError:
    """The 20 GB project store is full (wire/02): QuotaFailure without dimensions, Help."""
    del used, wanted  # the live answer names only the limit
    metric = _METRIC + "file_storage_bytes"
    return ApiError(
        429,
        f"{_QUOTA_MESSAGE}\n* Quota exceeded for metric: {metric}, limit: {limit}",
        "RESOURCE_EXHAUSTED",
        [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": metric,
                        "quotaId": "FileStorageBytesPerProject",
                        "quotaValue": str(limit),
                    }
                ],
            },
            HELP,
        ],
    )


def rate_quota_exceeded(quotas: list[str], model: str, delay: float) -> ApiError:
    """A rate or day quota in the late-2025 wording (wire/27, 28): a line per violation
    and "Please retry in …s." in the message; details Help, QuotaFailure, RetryInfo
    (whole seconds). No quotas: the bare form with only a Help detail (wire/29)."""
    if not quotas:
        return ApiError(429, _QUOTA_MESSAGE + _USAGE_HINT, "RESOURCE_EXHAUSTED", [HELP])
    lines, violations = [], []
    for name in quotas:
        metric, quota_id, limit, with_value = RATE_QUOTAS[name]
        lines.append(
            f"\n* Quota exceeded for metric: {_METRIC}{metric}, limit: {limit}, model: {model}"
        )
        violation: dict[str, Any] = {
            "quotaMetric": _METRIC + metric,
            "quotaId": quota_id,
            "quotaDimensions": {"location": "global", "model": model},
        }
        if with_value and len(quotas) == 1:  # several at once come without values (26, 27)
            violation["quotaValue"] = str(limit)
        violations.append(violation)
    message = f"{_QUOTA_MESSAGE}{_USAGE_HINT}{''.join(lines)}\nPlease retry in {delay:.9f}s."
    return ApiError(
        429,
        message,
        "RESOURCE_EXHAUSTED",
        [
            HELP,
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": violations},
            retry_info(f"{int(delay)}s"),
        ],
    )


def key_invalid(key: str) -> ApiError:
    """A refused key (wire/08); a key not shaped like a real one is echoed back in a
    DebugInfo detail (wire/09), which a client must keep out of its logs."""
    message = "API key not valid. Please pass a valid API key."
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": message,
        },
    ]
    if not _REAL_KEY.fullmatch(key):
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.DebugInfo",
                "detail": f"Invalid API key: {key}",
            }
        )
    return ApiError(400, message, "INVALID_ARGUMENT", details)


_REAL_KEY = re.compile(r"AIza[0-9A-Za-z_-]{35}")

# Server errors carry no details (wire/31, 32, 34).
SERVER_MESSAGES = {
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
