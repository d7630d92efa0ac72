"""check --live: the pure inspections, then the real CLI against the emulator made to
answer like the live service and unlike it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediasync.commands import check_live
from mediasync.commands.check_live import (
    Answers,
    RoundTrip,
    inspect_fields,
    inspect_finalize,
    inspect_generation,
    inspect_get,
    inspect_gone,
    inspect_hash,
    inspect_start,
)
from mediasync.emulator import Emulator, EmulatorConfig, Fault
from mediasync.gemini import GeminiClient, RetryPolicy
from tests.helpers import cli, write_config

KEY = "live-check-key-0123456789"
DATA = b"\x89PNG\r\n\x1a\n not really a png, only bytes to hash"
HEX = hashlib.sha256(DATA).hexdigest()
H = 3600


# --- pure inspections ------------------------------------------------------------


def test_hash_forms_are_named() -> None:
    live = base64.b64encode(HEX.encode()).decode()
    assert len(live) == 88
    assert inspect_hash(live, DATA).differences == ()
    raw = base64.b64encode(hashlib.sha256(DATA).digest()).decode()
    (d,) = inspect_hash(raw, DATA).differences
    assert d.startswith("sha256Hash is base64 of the raw digest, expected base64 of the hex")
    (d,) = inspect_hash(None, DATA).differences
    assert d.startswith("no sha256Hash")
    (d,) = inspect_hash(HEX.upper(), DATA).differences
    assert "bare hex digest" in d
    (d,) = inspect_hash(live.rstrip("="), DATA).differences  # unpadded: decodes all the same
    assert "another form" in d
    other = base64.b64encode(hashlib.sha256(b"other").hexdigest().encode()).decode()
    (d,) = inspect_hash(other, DATA).differences
    assert "does not match" in d
    (d,) = inspect_hash(12, DATA).differences
    assert "JSON int" in d


def test_start_headers() -> None:
    url = "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=SECRET"
    good = inspect_start({"x-goog-upload-url": url, "x-goog-upload-chunk-granularity": "8388608"})
    assert good.differences == ()
    assert "8388608" in good.summary and "SECRET" not in good.summary
    absent = inspect_start({"x-goog-upload-url": url})
    assert absent.differences == () and "no X-Goog-Upload-Chunk-Granularity" in absent.summary
    (d,) = inspect_start({"x-goog-upload-url": "/upload/v1beta/files?upload_id=SECRET"}).differences
    assert "relative" in d and "SECRET" not in d
    (d,) = inspect_start({}).differences
    assert "no X-Goog-Upload-URL" in d
    (d,) = inspect_start({"x-goog-upload-url": url,
                          "x-goog-upload-chunk-granularity": "lots"}).differences
    assert "'lots'" in d


def live_file(**changes: Any) -> dict[str, Any]:
    """Shaped like wire/01: sizeBytes a string, 6 and 9 fractional digits, 48 h less a few ms."""
    f = {
        "name": "files/abc-123",
        "mimeType": "image/png",
        "sizeBytes": str(len(DATA)),
        "createTime": "2025-03-01T10:00:00.123456Z",
        "expirationTime": "2025-03-03T10:00:00.110123456Z",
        "sha256Hash": base64.b64encode(HEX.encode()).decode(),
        "uri": "https://generativelanguage.googleapis.com/v1beta/files/abc-123",
        "state": "ACTIVE",
        "source": "UPLOADED",
    }
    f.update(changes)
    return {k: v for k, v in f.items() if v is not None}


def test_fields_of_a_live_shaped_file_pass() -> None:
    out = inspect_fields(live_file(), size=len(DATA), mime="image/png")
    assert out.differences == ()
    assert "createTime + 48 h" in out.summary


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"expirationTime": None}, ["File: no expirationTime"]),
        ({"name": None, "uri": None}, ["File: no name", "File: no uri"]),
        ({"sizeBytes": len(DATA)}, ["File: sizeBytes is the number"]),
        ({"sizeBytes": "7"}, ['File: sizeBytes is "7", expected']),
        ({"mimeType": "image/jpeg"}, ["File: mimeType is 'image/jpeg'"]),
        ({"expirationTime": "2025-03-02T10:00:00Z"}, ["createTime + 24 h, expected + 48 h"]),
        ({"createTime": "yesterday"}, ["File: createTime 'yesterday' is not an RFC 3339"]),
        ({"state": "READY"}, ["File: state 'READY' is not one of"]),
        ({"name": "abc"}, ["File: name 'abc' is not files/<id>"]),
        ({"uri": "files/abc-123"}, ["is not an absolute URL"]),
    ],
)
def test_each_odd_field_is_named(changes: dict[str, Any], expected: list[str]) -> None:
    diffs = inspect_fields(live_file(**changes), size=len(DATA), mime="image/png").differences
    assert len(diffs) == len(expected), diffs
    for d, e in zip(diffs, expected, strict=True):
        assert e in d


def test_finalize_wrapping_and_status() -> None:
    final = {"x-goog-upload-status": "final"}
    resource, out = inspect_finalize(final, {"file": live_file()})
    assert out.differences == () and resource == live_file()
    resource, out = inspect_finalize(final, live_file())
    assert resource == live_file() and "bare File" in out.differences[0]
    resource, out = inspect_finalize({}, {})
    assert resource is None
    assert [d.split(":")[0] for d in out.differences] == ["finalize", "finalize"]
    assert inspect_get(live_file()) == ()
    assert "wrapped" in inspect_get({"file": live_file()})[0]


def test_gone_is_403_never_404() -> None:
    assert inspect_gone(403, "PERMISSION_DENIED").differences == ()
    (d,) = inspect_gone(404, "NOT_FOUND").differences
    assert "404 NOT_FOUND, expected 403 PERMISSION_DENIED" in d
    (d,) = inspect_gone(200, "OK").differences
    assert "still there" in d


def test_generation_tokens() -> None:
    raw = {"candidates": [{"content": {"parts": [{"text": "Blue"}]}, "finishReason": "STOP"}],
           "usageMetadata": {"promptTokenCount": 260, "candidatesTokenCount": 1,
                             "totalTokenCount": 261}}
    out = inspect_generation(raw, "m")
    assert out.differences == ()
    assert "261 tokens (prompt 260, answer 1); answer 'Blue'" in out.summary
    raw["usageMetadata"].update(thoughtsTokenCount=40, totalTokenCount=301)
    assert "thoughts 40" in inspect_generation(raw, "m").summary
    (d,) = inspect_generation({"candidates": []}, "m").differences
    assert "no usageMetadata" in d
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"totalTokenCount": 3}}
    assert "prompt blocked (SAFETY)" in inspect_generation(blocked, "m").summary


# --- the round trip in-process: what is sent ----------------------------------------


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def ok(self, what: str) -> None:
        self.lines.append(f"ok   {what}")

    def differ(self, what: str) -> None:
        self.lines.append(f"FAIL {what}")

    def fail(self, what: str, *, api: bool = False) -> None:
        self.lines.append(f"FAIL {what}")


@pytest.fixture
def emu() -> Iterator[Emulator]:
    e = Emulator(EmulatorConfig(port=0, key=KEY)).start()
    yield e
    e.stop()


def round_trip(emu: Emulator) -> tuple[list[str], list[dict[str, Any]]]:
    """(report lines, generateContent bodies sent)."""
    sent: list[dict[str, Any]] = []

    async def spy(request: httpx.Request) -> None:
        if request.url.path.endswith(":generateContent"):
            sent.append(json.loads(request.content))

    async def nap(_: float) -> None:
        pass

    answers, lines = Answers(), Lines()

    async def go() -> None:
        http = httpx.AsyncClient(event_hooks={"request": [spy], "response": [answers]})
        client = GeminiClient(KEY, emu.base_url, retry=RetryPolicy(max_attempts=2, sleep=nap),
                              http=http)
        async with client:
            await RoundTrip(client, answers, lines, "gemini-2.5-flash").run()

    asyncio.run(go())
    return lines.lines, sent


def test_generate_asks_cheaply_with_thinking_off(emu: Emulator) -> None:
    lines, sent = round_trip(emu)
    assert all(line.startswith("ok") for line in lines), lines
    (body,) = sent
    assert body["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 0},
                                        "mediaResolution": "MEDIA_RESOLUTION_LOW",
                                        "maxOutputTokens": 16}
    parts = body["contents"][0]["parts"]
    assert len(parts[1]["text"].split()) == 1
    tokens = next(line for line in lines if "generateContent" in line)
    total = int(tokens.split("): ")[1].split(" tokens")[0])
    assert 64 < total < 200  # 2.5 at media_resolution "low": 64 for the image
    assert emu.stats()["live_files"] == 0


def test_a_model_that_cannot_stop_thinking_is_asked_again_without_budget(emu: Emulator) -> None:
    emu.add_fault(Fault(status=400, match="generate", times=1, message=(
        "Budget 0 is invalid. This model only works in thinking mode.")))
    lines, sent = round_trip(emu)
    assert all(line.startswith("ok") for line in lines), lines
    assert [("thinkingConfig" in b["generationConfig"]) for b in sent] == [True, False]
    assert any("refused thinkingBudget 0" in line for line in lines)


# --- the real CLI ----------------------------------------------------------------


def live(tmp_path: Path, emu: Emulator, key: str = KEY) -> subprocess.CompletedProcess[str]:
    cfg = write_config(tmp_path, emu.base_url, folder=tmp_path / "media")
    r = cli(cfg, "check", "--live", timeout=60, GEMINI_API_KEY=key)
    assert "Traceback" not in r.stdout + r.stderr
    assert key not in r.stdout + r.stderr
    return r


def fails(r: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in r.stdout.splitlines() if line.startswith("FAIL")]


def test_live_check_passes_against_a_service_answering_like_the_live_one(
    tmp_path: Path, emu: Emulator
) -> None:
    r = live(tmp_path, emu)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert all(line.startswith(("ok   ", "verdict")) for line in lines), r.stdout
    for step in ("sample:", "upload start: absolute", "wrapped in {file: …}", "sha256Hash",
                 "File fields", "ACTIVE", "generateContent", "403 PERMISSION_DENIED"):
        assert any(step in line for line in lines), step
    assert "chunk granularity 8388608" in r.stdout
    assert lines[-1].startswith("verdict: ready") and "as mediasync expects" in lines[-1]
    stats = emu.stats()
    assert stats["live_files"] == 0
    requests = stats["requests"]
    assert (requests["start"], requests["generate"], requests["delete"]) == (1, 1, 1)


@pytest.mark.parametrize(
    ("quirk", "expected"),
    [
        ({"hash_form": "raw"},
         "sha256Hash is base64 of the raw digest, expected base64 of the hex digest"),
        ({"hash_form": "none"}, "no sha256Hash"),
        ({"relative_upload_url": True}, "upload start: X-Goog-Upload-URL is relative"),
        ({"omit_fields": ("expirationTime",)}, "File: no expirationTime"),
    ],
)
def test_each_difference_is_one_fail_line_and_nothing_is_left(
    tmp_path: Path, quirk: dict[str, Any], expected: str
) -> None:
    emu = Emulator(EmulatorConfig(port=0, key=KEY, **quirk)).start()
    try:
        r = live(tmp_path, emu)
        stats = emu.stats()
    finally:
        emu.stop()
    assert r.returncode == 1, r.stdout + r.stderr
    (line,) = fails(r)
    assert line.startswith(f"FAIL {expected}"), r.stdout
    # The run went on past the difference: the question was asked and the file deleted.
    assert stats["requests"]["generate"] == 1 and stats["live_files"] == 0
    assert "403 PERMISSION_DENIED, as expected" in r.stdout
    assert r.stdout.splitlines()[-1].startswith("verdict: the live service differs")


def test_bad_key_is_exit_3_with_one_line(tmp_path: Path, emu: Emulator) -> None:
    r = live(tmp_path, emu, key="wrong-key-9876543210")
    assert r.returncode == 3, r.stdout + r.stderr
    (line,) = fails(r)
    assert "refused" in line
    assert "did not run" in r.stdout.splitlines()[-1]
    assert "start" not in emu.stats()["requests"]


def test_a_failure_mid_way_still_deletes_the_upload(tmp_path: Path, emu: Emulator) -> None:
    emu.add_fault(Fault(status=400, match="generate", times=None, message="Injected: no."))
    r = live(tmp_path, emu)
    assert r.returncode == 1, r.stdout + r.stderr
    (line,) = fails(r)
    assert line.startswith("FAIL generateContent") and "Injected: no." in line
    stats = emu.stats()
    assert stats["requests"]["delete"] == 1 and stats["live_files"] == 0
    assert "403 PERMISSION_DENIED, as expected" in r.stdout


def test_a_lost_finalize_answer_still_deletes_the_upload(tmp_path: Path, emu: Emulator) -> None:
    # The finalize commits but its answer is lost, and every query fails: the client
    # gives up without knowing the file's name; the clean-up finds it by display name.
    emu.add_fault(Fault(kind="lost_finalize"))
    emu.add_fault(Fault(status=503, match="query", times=None))
    r = live(tmp_path, emu)
    assert r.returncode == 1, r.stdout + r.stderr
    (line,) = fails(r)
    assert line.startswith("FAIL upload and finalize")
    stats = emu.stats()
    assert stats["uploads_finalized"] == 1 and stats["live_files"] == 0
    assert "403 PERMISSION_DENIED, as expected" in r.stdout


def test_plain_check_makes_no_upload(tmp_path: Path, emu: Emulator) -> None:
    cfg = write_config(tmp_path, emu.base_url, folder=tmp_path / "media")
    r = cli(cfg, "check", timeout=60, GEMINI_API_KEY=KEY)
    assert r.returncode == 0 and "as mediasync expects" not in r.stdout
    # the listing (the key, the storage used) and one look at the configured model
    assert emu.stats()["requests"] == {"list": 1, "models.get": 1}


def test_module_constants_stay_cheap() -> None:
    assert check_live.generation_config("gemini-2.5-flash")["maxOutputTokens"] <= 32
    # thinking "off" as each family takes it: a budget of 0 on 2.5, the lowest level on 3.x
    assert check_live.generation_config("gemini-3.5-flash-lite")["thinkingConfig"] == {
        "thinkingLevel": "MINIMAL"}
    assert check_live.generation_config("gemini-3.5-flash-lite")["mediaResolution"] == \
        "MEDIA_RESOLUTION_LOW"  # 280 tokens for the image, not 1,120
    assert check_live.SAMPLE_SIDE <= 384  # one 258-token tile
