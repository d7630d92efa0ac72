"""The client parses every live answer in tests/wire/ into the right values (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mediasync.gemini import quota
from mediasync.gemini.errors import MAX_SERVER_DELAY, ApiError, clamp_delay
from mediasync.gemini.models import File, Generation
from tests.wire_samples import WIRE, body, raw, sample

# What each sample is for on the client side; a new sample must be placed here.
FILES = (1, 11, 12, 13, 14)
GENERATIONS = (17, 18, 19, 20, 21, 22, 23, 24, 38)
ERRORS = (2, 3, 4, 5, 6, 7, 8, 9, 10, 25, 26, 27, 28, 29, 31, 32, 34, 35, 36, 41)
NOT_PARSED = {
    15: "delete answers {}: nothing to parse (the emulator's shape is checked)",
    16: "upload start: a status line, no body",
    37: "models.list page token: opaque, sent back as it came (test_37_…)",
    40: "batches.list: the client has no batches yet (issue 17)",
}

BBB_SHA256 = "f78f39603e6774907f2faafabf26a667f4a6fc31769ec304a8a8f7c62d280508"


def test_every_sample_has_a_client_case() -> None:
    numbers = {int(p.name[:2]) for p in WIRE.glob("*.json")}
    covered = set(FILES) | set(GENERATIONS) | set(ERRORS) | set(NOT_PARSED)
    assert numbers == covered


# -- File resources -------------------------------------------------------
def test_01_image_file() -> None:
    f = File.from_json(body(1))
    assert f.name == "files/29zm2ddgh73v" and f.display_name is None
    assert f.mime_type == "image/png" and f.size_bytes == 120474 and f.state == "ACTIVE"
    assert f.sha256_hex == "183650e2def63712de785b641973235b1d8c7212344b0b36ca6972bfb6e15a8e"
    assert f.create_time == datetime(2025, 3, 29, 12, 39, 16, 599879, tzinfo=UTC)
    # 9 fractional digits: nanoseconds beyond Python's microseconds are dropped, not refused
    assert f.expiration_time == datetime(2025, 3, 31, 12, 39, 16, 139536, tzinfo=UTC)
    assert f.uri == "https://generativelanguage.googleapis.com/v1beta/files/29zm2ddgh73v"


def test_11_finalize_wrapper_and_hash_proof() -> None:
    wrapped = body(11)
    f = File.from_json(wrapped)
    assert f == File.from_json(wrapped["file"])  # {file: …} and bare parse alike
    assert f.name == "files/4if4o2bqvugf" and f.display_name == "Big Buck Bunny"
    assert f.state == "PROCESSING" and f.size_bytes == 64657027
    assert len(f.sha256_hash or "") == 88 and f.sha256_hex == BBB_SHA256
    assert f.update_time == f.create_time
    assert f.expiration_time is not None and f.create_time is not None
    lead = f.create_time.replace(day=28) - f.expiration_time  # 48 h minus a few ms
    assert 0 < lead.total_seconds() < 1


def test_12_video_active_with_duration() -> None:
    f = File.from_json(body(12))
    assert f.state == "ACTIVE" and f.video_duration == 596.0 and f.sha256_hex == BBB_SHA256
    assert f.update_time == datetime(2024, 8, 26, 8, 25, 3, 977029, tzinfo=UTC)
    assert f.create_time == File.from_json(body(11)).create_time


@pytest.mark.parametrize("number", [13, 14])
def test_13_14_audio_get_and_list_item(number: int) -> None:
    data = body(number)
    f = File.from_json(data["files"][0] if number == 14 else data)
    assert f.name == "files/x27lu0k9zc2k" and f.mime_type == "audio/mpeg"
    assert f.size_bytes == 41762063 and f.state == "ACTIVE" and f.video_duration is None
    assert f.sha256_hex == "0e7fafe1984aed24c15be0789a35e60c5af0c7373b9ed9f2631316740a4b9ee6"
    assert f.expiration_time == datetime(2025, 2, 16, 22, 33, 33, 359672, tzinfo=UTC)
    if number == 14:
        assert "nextPageToken" not in data  # a list that fits one page
    else:
        assert "file" not in data and data["name"] == f.name  # files.get: the bare File


# -- generateContent ------------------------------------------------------
@pytest.mark.parametrize(
    "number,prompt,candidates,total",
    [(17, 754, 49, 803), (18, 270, 170, 440), (20, 323388, 397, 323785)],
)
def test_text_answers_without_thinking(
    number: int, prompt: int, candidates: int, total: int
) -> None:
    g = Generation.from_json(body(number))
    assert g.text and not g.blocked and g.finish_reason == "STOP"
    assert g.text == body(number)["candidates"][0]["content"]["parts"][0]["text"]
    u = g.usage
    assert (u.prompt_tokens, u.candidates_tokens, u.total_tokens) == (prompt, candidates, total)
    assert u.thoughts_tokens == 0  # absent on the wire without thinking


def test_19_thinking_tokens() -> None:
    got = [Generation.from_json(item["response"]) for item in body(19)]
    assert [
        (g.usage.prompt_tokens, g.usage.candidates_tokens, g.usage.thoughts_tokens) for g in got
    ] == [(8, 11, 829), (9, 63, 1180)]
    for g in got:
        u = g.usage
        assert u.total_tokens == u.prompt_tokens + u.candidates_tokens + u.thoughts_tokens
        assert g.text and g.model_version == "gemini-2.5-flash" and not g.blocked


def test_21_max_tokens_while_thinking_is_an_outcome_without_text() -> None:
    g = Generation.from_json(body(21))
    assert g.text is None and g.finish_reason == "MAX_TOKENS" and not g.blocked
    assert g.usage.thoughts_tokens == 2999 and g.usage.candidates_tokens == 0
    assert g.usage.total_tokens == 4705


@pytest.mark.parametrize("number,reason", [(22, "PROHIBITED_CONTENT"), (23, "SAFETY")])
def test_blocked_prompt(number: int, reason: str) -> None:
    g = Generation.from_json(body(number))
    assert g.blocked and g.text is None and g.block_reason == reason
    assert g.finish_reason is None


def test_22_blocked_prompt_still_reports_usage() -> None:
    u = Generation.from_json(body(22)).usage
    assert u.prompt_tokens == u.total_tokens == 9311 and u.candidates_tokens == 0


def test_24_blocked_candidate() -> None:
    g = Generation.from_json(body(24))
    assert g.blocked and g.text is None and g.finish_reason == "SAFETY"
    assert g.block_reason is None and g.usage.candidates_tokens == 1


def test_38_json_mode_text_is_the_json_string() -> None:
    s = sample(38)
    assert s["truncated"] and s["body"] is None
    head = s["raw_body_head"]
    # Cut by `head` after "role": close the three open objects and the array.
    g = Generation.from_json(json.loads(head + "}}]}"))
    assert g.text is not None and not g.blocked
    recipes = json.loads(g.text)
    assert [r["recipe_name"] for r in recipes][:2] == [
        "Chocolate Chip Cookies",
        "Peanut Butter Cookies",
    ]


# -- errors ---------------------------------------------------------------
def err(number: int, status: int | None = None, *, secret: str | None = None) -> ApiError:
    s = sample(number)
    code = status if status is not None else (s["http_status"] or 0)
    return ApiError.from_body(code, raw(number), secret=secret)


def violations(e: ApiError) -> list[quota.Violation]:
    """What the daemon's 429 parser reads from the error (as gemini/pacing.py calls it)."""
    return quota.violations(e.details, e.message)


def test_02_storage_full() -> None:
    e = err(2)
    assert e.code == 429 and e.status == "RESOURCE_EXHAUSTED"
    assert e.storage_full and e.quota_exceeded and not e.retryable
    assert violations(e) == [
        quota.Violation(kind="storage", quota_id="FileStorageBytesPerProject", model=None,
                        limit=21474836480),
    ]
    assert e.retry_delay is None


def test_03_storage_full_in_proto_text() -> None:
    text = body(3)
    assert isinstance(text, str)
    e = ApiError.from_body(0, text.encode())  # status unknown: taken from the text
    assert e.code == 429 and e.status == "RESOURCE_EXHAUSTED"
    assert e.storage_full and not e.retryable
    assert [v.quota_id for v in violations(e)] == ["FileStorageBytesPerProject"]
    assert violations(e)[0].limit == 21474836480
    # INT64_MAX seconds ("never") is advice, clamped where it is read: an hour at most
    assert e.retry_delay == MAX_SERVER_DELAY == 3600
    assert e.message.startswith("RESOURCE_EXHAUSTED: You exceeded your current quota")
    assert "type.googleapis.com" not in e.message


def test_04_unsupported_mime() -> None:
    e = err(4)  # status line not captured: the code comes from the body
    assert (e.code, e.status, e.message) == (
        400,
        "INVALID_ARGUMENT",
        "Unsupported MIME type: jsonl",
    )
    assert not e.retryable and not e.key_invalid and not e.file_gone


@pytest.mark.parametrize("number", [5, 6])
def test_403_file_gone(number: int) -> None:
    e = err(number)
    assert e.code == 403 and e.status == "PERMISSION_DENIED"
    assert e.file_gone and not e.key_invalid and not e.retryable


def test_07_not_active() -> None:
    e = err(7)
    assert e.code == 400 and e.status == "FAILED_PRECONDITION" and e.file_not_active
    assert not e.retryable and not e.file_gone and not e.key_invalid
    assert not err(4).file_not_active


@pytest.mark.parametrize("number", [8, 9, 10])
def test_key_invalid(number: int) -> None:
    e = err(number)
    assert e.code == 400 and e.reason == "API_KEY_INVALID"
    assert e.key_invalid and not e.retryable and not e.file_gone


def test_09_echoed_key_is_redacted_everywhere() -> None:
    e = err(9, secret="INVALID_KEY_BLAH")
    assert "INVALID_KEY_BLAH" not in json.dumps(e.details) + str(e) + repr(e)
    assert e.key_invalid


def test_25_input_tokens_per_minute() -> None:
    e = err(25)
    assert e.retryable and e.quota_exceeded and not e.storage_full
    assert e.retry_delay == 26.0
    assert violations(e) == [
        quota.Violation(
            kind="tpm",
            quota_id="GenerateContentInputTokensPerModelPerMinute-FreeTier",
            model="gemini-2.5-flash",
            limit=250000,
        ),
    ]


def test_26_three_violations_without_values() -> None:
    e = err(26)
    assert e.retryable and e.retry_delay is None  # the RetryInfo was cut off
    assert [v.quota_id for v in violations(e)] == [
        "GenerateContentInputTokensPerModelPerMinute-FreeTier",
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
    ]
    assert {v.model for v in violations(e)} == {"gemini-2.5-flash-preview-image"}
    assert all(v.limit is None for v in violations(e))


def test_27_details_tail_help_first() -> None:
    s = sample(27)
    # Only the details survived; put them in the envelope every other 429 shows.
    wrapped = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "",
            "details": s["body_fragment"],
        }
    }
    e = ApiError.from_body(429, json.dumps(wrapped).encode())
    assert e.retry_delay == 47.0 and e.retryable
    assert violations(e)[0].quota_id == "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    assert {v.model for v in violations(e)} == {"gemini-2.0-flash"}


def test_28_retry_in_message_when_retry_info_is_missing() -> None:
    e = err(28)
    assert e.retryable and e.retry_delay == pytest.approx(47.434392449)
    (v,) = violations(e)
    assert v.quota_id == "GenerateContentPaidTierInputTokensPerModelPerMinute"
    assert v.limit == 4000000 and v.model == "gemini-2.0-flash"


def test_quota_lines_in_the_message_stand_in_for_a_missing_quota_failure() -> None:
    # The 2026 free-tier wording quoted in wire/28's note, with no details at all.
    message = (
        "You exceeded your current quota. \n* Quota exceeded for metric: "
        "generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, "
        "model: gemini-2.0-flash\nPlease retry in 49.125626837s."
    )
    data = {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}}
    e = ApiError.from_body(429, json.dumps(data).encode())
    (v,) = violations(e)
    # No quotaId without a QuotaFailure: the metric names the quota instead.
    assert (v.quota_id, v.limit, v.model) == (
        "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        0,
        "gemini-2.0-flash",
    )
    assert e.retry_delay == pytest.approx(49.125626837) and e.retryable


def test_29_help_only_429() -> None:
    e = err(29)
    assert e.code == 429 and e.status == "RESOURCE_EXHAUSTED" and e.retryable
    assert e.retry_delay is None and violations(e) == [] and not e.quota_exceeded
    assert not e.storage_full and e.message.endswith("rate-limit. ")


@pytest.mark.parametrize(
    "number,code,status",
    [(31, 503, "UNAVAILABLE"), (32, 500, "INTERNAL"), (34, 504, "DEADLINE_EXCEEDED")],
)
def test_server_errors_are_retryable(number: int, code: int, status: str) -> None:
    e = err(number)
    assert (e.code, e.status) == (code, status) and e.retryable and e.details == []
    assert e.message == body(number)["error"]["message"]


def test_35_error_wrapped_in_an_array() -> None:
    e = err(35)
    assert (e.code, e.status) == (503, "UNAVAILABLE") and e.retryable
    assert e.message == "The model is overloaded. Please try again later."


def test_36_bodiless_501_does_not_crash() -> None:
    e = err(36)
    assert e.code == 501 and e.status == "NOT_IMPLEMENTED" and not e.retryable


@pytest.mark.parametrize("delay, waited", [
    ("47s", 47.0), ("0.5s", 0.5), ("5400s", MAX_SERVER_DELAY), ("-3s", 0.0),
    ("9223372036854775807s", MAX_SERVER_DELAY), ("1e999s", MAX_SERVER_DELAY), ("nans", 0.0),
])
def test_every_retry_delay_is_clamped_where_it_is_read(delay: str, waited: float) -> None:
    # One clamp for every reader (judge_api, pacing, the in-call retry): never days.
    info = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]
    assert ApiError(429, "RESOURCE_EXHAUSTED", "q", info).retry_delay == waited
    text = ApiError(429, "RESOURCE_EXHAUSTED", "Please retry in 99999999999s.")
    assert text.retry_delay == MAX_SERVER_DELAY
    assert clamp_delay(float("inf")) == MAX_SERVER_DELAY and clamp_delay(float("nan")) == 0.0


# -- models (issue 16) ----------------------------------------------------------------
def test_41_a_retired_model_is_named_and_held_not_a_verdict_on_the_file() -> None:
    from mediasync.rules import failures

    e = err(41)
    assert (e.code, e.status) == (404, "NOT_FOUND") and e.details == []
    assert e.model_missing == "gemini-2.0-pro"  # the model, not any file
    assert not e.retryable and not e.file_gone and not e.key_invalid
    assert failures.classify(e) == "held"
    v = failures.judge_api(e, attempts=1, now=100.0, jitter=0.5)
    assert v.transient and not v.counts  # never "failed", no attempt counted


def test_41_other_404s_name_no_model() -> None:
    assert ApiError(404, "NOT_FOUND", "Method not found: GET /v1beta/x").model_missing is None
    assert ApiError(400, "INVALID_ARGUMENT", "models/x is bad").model_missing is None


def test_37_a_models_list_page_token_is_read_as_an_opaque_string() -> None:
    from mediasync.emulator.models import after_token

    tail = sample(37)["body_tail_as_captured"]
    page = json.loads('{"models": [{"name": "models/x"}' + tail.split("}", 1)[1])
    token = page["nextPageToken"]
    assert token == "CiRtb2RlbHMvZ2VtaW5pLTIuMC1mbGFzaC10aGlua2luZy0wMDE="
    # The client sends it back as it came (catalog.list_models); its form, for the emulator:
    assert after_token(token) == "models/gemini-2.0-flash-thinking-001"


def test_model_resource_parses_leniently() -> None:
    from mediasync.gemini import ModelInfo

    m = ModelInfo.from_json({"name": "models/gemini-3.5-flash-lite", "inputTokenLimit": "1048576",
                             "supportedGenerationMethods": ["generateContent", 7],
                             "thinking": True, "displayName": 3})
    assert m.id == "gemini-3.5-flash-lite" and m.input_token_limit == 1048576
    assert m.methods == ("generateContent",) and m.generates and m.thinking is True
    assert m.display_name is None
    assert not ModelInfo.from_json({"name": "models/e", "supportedGenerationMethods": [
        "embedContent"]}).generates
    assert ModelInfo.from_json({"name": "models/bare"}).generates  # nothing listed: assume


@pytest.mark.parametrize("usage,header,tier", [
    ({"serviceTier": "flex"}, None, "flex"),
    ({"serviceTier": "SERVICE_TIER_FLEX"}, None, "flex"),
    ({"serviceTier": "PRIORITY"}, None, "priority"),
    ({}, "standard", "standard"),
    ({"serviceTier": "odd"}, "flex", "flex"),
    ({}, None, None),
])  # fmt: skip
def test_the_tier_that_served_is_read_from_usage_then_the_header(usage, header, tier) -> None:
    data = json.loads(json.dumps(body(19)[0]["response"]))
    data["usageMetadata"].update(usage)
    g = Generation.from_json(data, tier_header=header)
    assert g.service_tier == tier and g.model_version == "gemini-2.5-flash"
