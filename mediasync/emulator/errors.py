"""The service's error shape: ``{"error": {"code", "message", "status", "details"}}``."""

from __future__ import annotations

import re
from collections.abc import Sequence
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
# The late-2025 on wording adds where to watch usage: the free tier's link (wire/29,
# the free-tier variant quoted in 28's note) differs from the paid tier's (wire/28).
_USAGE_HINT = {
    "free": " To monitor your current usage, head to: https://ai.dev/rate-limit. ",
    "paid": " To monitor your current usage, head to: https://ai.dev/usage?tab=rate-limit. ",
}
_METRIC = "generativelanguage.googleapis.com/"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
HELP = {
    "@type": "type.googleapis.com/google.rpc.Help",
    "links": [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ],
}
TIERS = ("free", "paid")
# How a 429 is worded (see rate_quota_exceeded).
QUOTA_SHAPES = ("full", "novalue", "bare")
# The limits a 429 names when the caller has none to give (a fault, not a counted
# quota): the free tier's of 2025; paid tier 1's input tokens as wire/28, the rest
# of its numbers illustrative.
DEFAULT_LIMITS = {
    "free": {"rpm": 10, "rpd": 250, "tpm": 250000},
    "paid": {"rpm": 1000, "rpd": 10000, "tpm": 4000000},
}


def _quota_names(kind: str, tier: str) -> tuple[str, str]:
    """(quotaMetric, quotaId) of a rate quota ("rpm", "tpm", "rpd") as the live
    service names them (wire/25–28): the free tier's ids end "-FreeTier", the
    paid tier's input-token id carries "PaidTier" inside instead."""
    t = "free_tier" if tier == "free" else "paid_tier"
    suffix = "-FreeTier" if tier == "free" else ""
    if kind == "tpm":
        quota_id = ("GenerateContentInputTokensPerModelPerMinute-FreeTier" if tier == "free"
                    else "GenerateContentPaidTierInputTokensPerModelPerMinute")
        return f"{_METRIC}generate_content_{t}_input_token_count", quota_id
    per = {"rpm": "Minute", "rpd": "Day"}[kind]
    return (f"{_METRIC}generate_content_{t}_requests",
            f"GenerateRequestsPer{per}PerProjectPerModel{suffix}")


# How a full store is answered: "json" as wire/02 (QuotaFailure and Help), or
# "retryinfo" with wire/03's RetryInfo of INT64_MAX seconds ("never") added, as JSON.
STORAGE_FORMS = ("json", "retryinfo")
NEVER = "9223372036854775807s"


def quota_exceeded(limit: int, form: str = "json") -> ApiError:
    """The 20 GB project store is full (wire/02): QuotaFailure without dimensions, Help;
    ``form="retryinfo"`` adds the RetryInfo wire/03 carries, 9223372036854775807 s."""
    if form not in STORAGE_FORMS:
        raise ValueError(f"storage form must be one of {', '.join(STORAGE_FORMS)}")
    metric = _METRIC + "file_storage_bytes"
    return ApiError(
        429,
        f"{_QUOTA_MESSAGE}\n* Quota exceeded for metric: {metric}, limit: {limit}",
        "RESOURCE_EXHAUSTED",
        [
            {
                "@type": _QUOTA_FAILURE,
                "violations": [
                    {
                        "quotaMetric": metric,
                        "quotaId": "FileStorageBytesPerProject",
                        "quotaValue": str(limit),
                    }
                ],
            },
            HELP,
            *([retry_info(NEVER)] if form == "retryinfo" else []),
        ],
    )


def rate_quota_exceeded(
    violations: Sequence[tuple[str, int]],
    model: str,
    delay: float,
    *,
    tier: str = "free",
    shape: str = "full",
) -> ApiError:
    """The 429 of a rate or day quota; ``violations`` are (kind, limit) with kind
    "rpm", "tpm" or "rpd", in the order the answer lists them.

    * ``full`` (late 2025 on, wire/27, 28): details Help, QuotaFailure, RetryInfo
      (whole seconds); the message adds the tier's usage link, one ``* Quota exceeded
      for metric: M, limit: N`` line per violation (", model: X" after it on the free
      tier only) and ``Please retry in S.SSSSSSSSSs.``; ``quotaValue`` only on a lone
      per-minute violation (25, 28 have it; the several of 26, 27 do not, and no
      sample shows a per-day one with it).
    * ``novalue`` (mid 2025, wire/25, 26): details QuotaFailure, Help, RetryInfo;
      the bare quota sentence as the message; no ``quotaValue`` (26).
    * ``bare``, or no violations (wire/29): only a Help detail, no numbers at all.
    """
    if shape not in QUOTA_SHAPES:
        raise ValueError(f"quota shape must be one of {', '.join(QUOTA_SHAPES)}")
    if tier not in TIERS:
        raise ValueError(f"quota tier must be one of {', '.join(TIERS)}")
    if shape == "bare" or not violations:
        return ApiError(429, _QUOTA_MESSAGE + _USAGE_HINT["free"], "RESOURCE_EXHAUSTED", [HELP])
    lines, items = [], []
    for kind, limit in violations:
        metric, quota_id = _quota_names(kind, tier)
        item: dict[str, Any] = {
            "quotaMetric": metric,
            "quotaId": quota_id,
            "quotaDimensions": {"location": "global", "model": model},
        }
        if shape == "full" and len(violations) == 1 and kind != "rpd":
            item["quotaValue"] = str(limit)
        items.append(item)
        on_model = f", model: {model}" if tier == "free" else ""
        lines.append(f"\n* Quota exceeded for metric: {metric}, limit: {limit}{on_model}")
    failure = {"@type": _QUOTA_FAILURE, "violations": items}
    retry = retry_info(f"{int(delay)}s")
    if shape == "novalue":
        return ApiError(429, _QUOTA_MESSAGE, "RESOURCE_EXHAUSTED", [failure, HELP, retry])
    message = (f"{_QUOTA_MESSAGE}{_USAGE_HINT[tier]}{''.join(lines)}"
               f"\nPlease retry in {delay:.9f}s.")
    return ApiError(429, message, "RESOURCE_EXHAUSTED", [HELP, failure, retry])


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
