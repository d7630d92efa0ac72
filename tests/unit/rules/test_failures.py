"""The failure vocabulary (failures.py): one verdict per cause, never permanent by count."""

from __future__ import annotations

import errno

import pytest

from mediasync.gemini import (
    ApiError,
    Pause,
    ProtocolError,
    QuotaPaused,
    TransportError,
    UploadSessionLost,
)
from mediasync.rules import failures

NOW = 1_800_000_000.0
KEY = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
STORAGE = [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaId": "FileStorageBytesPerProject"}]}]
RETRY = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "5400s"}]
GONE = "You do not have permission to access the File abc or it may not exist."


@pytest.mark.parametrize(
    "error, kind",
    [
        (ApiError(503, "UNAVAILABLE", "The model is overloaded."), "transient"),
        (ApiError(500, "INTERNAL", ""), "transient"),
        (ApiError(429, "RESOURCE_EXHAUSTED", "quota", RETRY), "transient"),
        (TransportError("DEADLINE_EXCEEDED", "timed out"), "transient"),
        (ProtocolError("answer is not JSON"), "transient"),  # an answer we cannot read
        (ApiError(400, "FAILED_PRECONDITION", "not in an ACTIVE state"), "transient"),
        (ApiError(403, "PERMISSION_DENIED", GONE), "transient"),  # vanished: upload again
        (ApiError(429, "RESOURCE_EXHAUSTED", "full", STORAGE), "transient"),
        (ApiError(400, "INVALID_ARGUMENT", "Unsupported MIME type: x"), "permanent"),
        # A refused upload session (twice, started over) is about the session, not the bytes.
        (UploadSessionLost(400, "INVALID_ARGUMENT", "Invalid upload offset 5"), "transient"),
        (UploadSessionLost(403, "PERMISSION_DENIED", "upload session refused"), "transient"),
        (ApiError(400, "INVALID_ARGUMENT", "API key not valid.", KEY), "config"),
    ],
)
def test_verdicts(error, kind):
    v = failures.judge_api(error, 1, NOW, 0.5)
    assert v.kind == kind
    assert (v.retry_at is not None) == (kind == "transient")
    assert v.reason


def test_transient_is_never_made_permanent_by_a_count():
    e = ApiError(503, "UNAVAILABLE", "overloaded")
    verdicts = [failures.judge_api(e, n, NOW, 0.5) for n in range(1, 1000, 37)]
    assert all(v.kind == "transient" and v.retry_at is not None for v in verdicts)
    delays = [v.retry_at - NOW for v in verdicts]
    assert max(delays) == pytest.approx(3600)


def test_backoff_doubles_caps_and_jitters():
    assert [failures.backoff(n, 0.5) for n in (1, 2, 3)] == [30, 60, 120]
    assert failures.backoff(50, 0.5) == 3600
    assert failures.backoff(3, 0.0) == 90 and failures.backoff(3, 0.999) < 150


def test_server_retry_delay_and_storage_wait_are_floors():
    slow = failures.judge_api(ApiError(429, "RESOURCE_EXHAUSTED", "q", RETRY), 1, NOW, 0.5)
    assert slow.retry_at == NOW + 3600  # 5400 s asked for: clamped to an hour
    full = failures.judge_api(ApiError(429, "RESOURCE_EXHAUSTED", "f", STORAGE), 1, NOW, 0.5)
    assert full.retry_at == NOW + failures.STORAGE_WAIT and "20 GB" in full.reason
    gone = failures.judge_api(ApiError(403, "PERMISSION_DENIED", GONE), 9, NOW, 0.5)
    assert gone.retry_at == NOW + failures.GONE_WAIT


def test_a_refusal_while_a_copy_serves_is_transient():
    e = ApiError(400, "INVALID_ARGUMENT", "Bad request.")
    assert failures.judge_api(e, 1, NOW, 0.5, serving=True).kind == "transient"
    key = ApiError(400, "INVALID_ARGUMENT", "API key not valid.", KEY)
    assert failures.judge_api(key, 1, NOW, 0.5, serving=True).kind == "config"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO])
def test_local_write_errors_are_transient(code):
    v = failures.judge_os(OSError(code, "boom"), 2, NOW, 0.5)
    assert v.kind == "transient" and v.retry_at == NOW + 60 and v.reason == "boom"


def test_a_quota_pause_waits_until_it_ends_and_is_no_failure_of_the_file():
    # Our own 429 for the day (or the spending cap): nothing goes out before resume_at.
    pause = Pause("files", NOW + 5 * 3600, "daily quota", "")
    v = failures.judge_api(QuotaPaused(pause, NOW), 3, NOW, 0.5)
    assert v.transient and not v.counts
    assert v.retry_at == NOW + 5 * 3600
    # One ending sooner than the backoff: the backoff still holds.
    soon = Pause("files", NOW + 5, "daily quota", "")
    v = failures.judge_api(QuotaPaused(soon, NOW), 3, NOW, 0.5)
    assert v.retry_at == NOW + failures.backoff(3, 0.5) and not v.counts
    # Any other 429 is a try that counts.
    assert failures.judge_api(ApiError(429, "RESOURCE_EXHAUSTED", "q"), 1, NOW, 0.5).counts


def test_a_401_is_the_key_not_the_file() -> None:
    from mediasync.commands.common import api_fatal
    e = ApiError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
    assert failures.classify(e) == "auth"
    assert api_fatal(e)


def test_a_full_store_waits_our_own_time_whatever_its_retry_info_says():
    # wire/03: the storage-full answer carries RetryInfo 9223372036854775807 s.
    never = [*STORAGE, {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": "9223372036854775807s"}]
    v = failures.judge_api(ApiError(429, "RESOURCE_EXHAUSTED", "full", never), 1, NOW, 0.5)
    assert v.transient and v.retry_at == NOW + failures.STORAGE_WAIT
    many = failures.judge_api(ApiError(429, "RESOURCE_EXHAUSTED", "full", never), 30, NOW, 0.5)
    assert many.retry_at == NOW + failures.BACKOFF_CAP  # never days
