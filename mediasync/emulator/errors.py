"""The service's error shape: ``{"error": {"code", "message", "status", "details"}}``."""

from __future__ import annotations

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


def quota_exceeded(used: int, wanted: int, limit: int) -> ApiError:
    return ApiError(
        429,
        f"Quota exceeded for quota metric 'File storage bytes' and limit "
        f"'FileStorageBytesPerProject': {used} bytes stored, {wanted} more requested, "
        f"limit {limit} bytes.",
        "RESOURCE_EXHAUSTED",
        [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "subject": "project",
                        "description": "File storage bytes per project",
                        "quotaMetric": "generativelanguage.googleapis.com/file_storage_bytes",
                        "quotaId": "FileStorageBytesPerProject",
                        "quotaValue": str(limit),
                    }
                ],
            }
        ],
    )
