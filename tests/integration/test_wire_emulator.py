"""The emulator answers in the shapes of the live service's answers in tests/wire/.

Each case makes the call a sample answers, on the emulator over loopback, and
compares the two with ``shape``: the same keys (bar those named as era- or
platform-specific), the same JSON types, the same encodings (int64 as strings,
the same number of fractional digits per timestamp, whole-second durations,
88-character hashes), and the same HTTP status.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mediasync.emulator import Emulator, EmulatorConfig, Fault, ModelSpec
from mediasync.emulator.models import DEFAULT_MODELS, after_token
from mediasync.gemini import quota
from mediasync.gemini.errors import ApiError
from mediasync.media.samples import mp4_bytes, png_bytes
from tests.wire_samples import WIRE, body, sample

KEY = "AIza" + "x" * 35  # shaped like a real key: no DebugInfo echo

_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(\d+))?Z")
_INT64 = re.compile(r"-?\d+")
_SECONDS = re.compile(r"\d+s")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


# -- the comparison -------------------------------------------------------
def shape(
    want: Any,
    got: Any,
    *,
    lack: frozenset[str] | set[str] = frozenset(),
    add: frozenset[str] | set[str] = frozenset(),
    at: str = "$",
) -> list[str]:
    """Differences between a live sample and the emulator's answer, as readable lines.

    ``lack``: keys the sample has that the emulator may leave out (another era or
    platform's fields); ``add``: keys (or detail @types) the emulator may add.
    """
    problems: list[str] = []
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{at}: want an object, got {type(got).__name__}"]
        for key, value in want.items():
            if key not in got:
                if key not in lack:
                    problems.append(f"{at}.{key}: missing")
                continue
            problems += shape(value, got[key], lack=lack, add=add, at=f"{at}.{key}")
        problems += [
            f"{at}.{k}: not in the live answer" for k in got if k not in want and k not in add
        ]
        return problems
    if isinstance(want, list):
        if not isinstance(got, list):
            return [f"{at}: want an array, got {type(got).__name__}"]
        if not want:
            return []
        typed = {d.get("@type"): d for d in want if isinstance(d, dict) and "@type" in d}
        for i, item in enumerate(got):
            if typed:  # details: matched by type, since their order changed over time
                kind = item.get("@type") if isinstance(item, dict) else None
                if kind not in typed:
                    if kind not in add:
                        problems.append(f"{at}[{i}]: detail {kind} not in the live answer")
                    continue
                model = typed[kind]
            else:
                model = want[min(i, len(want) - 1)]
            problems += shape(model, item, lack=lack, add=add, at=f"{at}[{i}]")
        return problems
    if isinstance(want, bool) or isinstance(got, bool):
        return [] if type(want) is type(got) else [f"{at}: want {want!r}, got {got!r}"]
    if isinstance(want, int):
        return [] if isinstance(got, int) else [f"{at}: want an integer, got {got!r}"]
    if isinstance(want, float):
        return [] if isinstance(got, int | float) else [f"{at}: want a number, got {got!r}"]
    if isinstance(want, str):
        if not isinstance(got, str):
            return [f"{at}: want a string, got {got!r}"]
        return _encoding(want, got, at)
    return [] if want is None or got == want else [f"{at}: want {want!r}, got {got!r}"]


def _encoding(want: str, got: str, at: str) -> list[str]:
    m = _TIME.fullmatch(want)
    if m:
        g = _TIME.fullmatch(got)
        digits = len(m.group(1) or "")
        if not g or len(g.group(1) or "") != digits:
            return [f"{at}: want RFC 3339 with {digits} fractional digits, got {got!r}"]
        return []
    if _INT64.fullmatch(want):
        return [] if _INT64.fullmatch(got) else [f"{at}: want an int64 string, got {got!r}"]
    if _SECONDS.fullmatch(want):
        return [] if _SECONDS.fullmatch(got) else [f"{at}: want whole seconds, got {got!r}"]
    if len(want) == 88 and want.endswith("==") and _B64.fullmatch(want):
        ok = len(got) == 88 and _B64.fullmatch(got)
        return [] if ok else [f"{at}: want 88-char base64 of the hex digest, got {got!r}"]
    return []


def conforms(want: Any, got: Any, **kw: Any) -> None:
    problems = shape(want, got, **kw)
    assert not problems, "\n".join(problems)


def test_shape_notices_drift() -> None:
    """The comparison itself fails on each kind of drift it is meant to catch."""
    live = body(12)
    assert shape(live, live) == []
    for key, value in [
        ("sizeBytes", 64657027),  # int64 as a number
        ("createTime", "2024-08-26T08:24:56.068Z"),  # 3 digits, not 6
        ("expirationTime", "2024-08-28T08:24:56.049455Z"),  # 6 digits, not 9
        ("sha256Hash", base64.b64encode(bytes(32)).decode()),  # raw digest form
        ("videoMetadata", {"videoDuration": "596.4s", "videoThumbnailBytes": ""}),
    ]:
        assert shape(live, {**live, key: value}), key
    assert shape(live, {k: v for k, v in live.items() if k != "state"})
    assert shape(live, {**live, "extra": 1})
    err = body(25)
    drift = json.loads(json.dumps(err))
    drift["error"]["details"][2]["retryDelay"] = 26.0
    assert shape(err, drift)


# -- the emulator and its calls --------------------------------------------
@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(key=KEY)) as e:
        yield e


@pytest.fixture
def api(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers={"x-goog-api-key": KEY}, timeout=10) as c:
        yield c


def start(api: httpx.Client, mime: str, size: int, display: str | None) -> httpx.Response:
    meta = {"display_name": display} if display else {}
    return api.post(
        "/upload/v1beta/files",
        headers={
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(size),
            "X-Goog-Upload-Header-Content-Type": mime,
        },
        json={"file": meta},
    )


def finalize(
    api: httpx.Client, data: bytes, mime: str, display: str | None = None
) -> httpx.Response:
    r = start(api, mime, len(data), display)
    assert r.status_code == 200, r.text
    return httpx.post(
        r.headers["x-goog-upload-url"],
        headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
        content=data,
    )


def uploaded(api: httpx.Client, data: bytes, mime: str, display: str | None = None) -> dict:
    r = finalize(api, data, mime, display)
    assert r.status_code == 200, r.text
    return r.json()["file"]


def mp3(size: int = 64_000) -> bytes:
    return (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(size))[:size]


def generate(
    api: httpx.Client, model: str, file: dict | None, prompt: str = "Describe.", **config: Any
) -> httpx.Response:
    parts: list[dict[str, Any]] = [{"text": prompt}]
    if file is not None:
        parts.insert(0, {"file_data": {"mime_type": file["mimeType"], "file_uri": file["uri"]}})
    req: dict[str, Any] = {"contents": [{"role": "user", "parts": parts}]}
    if config:
        req["generationConfig"] = config
    return api.post(f"/v1beta/models/{model}:generateContent", json=req)


def status_of(number: int) -> int:
    s = sample(number)
    return s["http_status"] or s["body"]["error"]["code"]


# -- which sample each case answers ---------------------------------------
COMPARED = {1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24,
            25, 26, 27, 28, 29, 31, 32, 34, 37, 38, 40, 41}  # fmt: skip
NOT_SERVED = {
    3: "proto text inside another message, not an HTTP body",
    20: "cachedContents are not emulated",
    35: "streamGenerateContent is not emulated",
    36: "historical 2024 multipart upload",
}


def test_every_sample_is_compared_or_excused() -> None:
    numbers = {int(p.name[:2]) for p in WIRE.glob("*.json")}
    assert numbers == COMPARED | set(NOT_SERVED)


# -- File resources --------------------------------------------------------
def test_01_image_upload_is_active_without_display_name(api: httpx.Client) -> None:
    r = finalize(api, png_bytes(8, 8), "image/png")
    assert r.status_code == 200 and r.headers["x-goog-upload-status"] == "final"
    conforms({"file": body(1)}, r.json())
    assert r.json()["file"]["state"] == "ACTIVE"


def test_11_12_video_processing_then_active(emu: Emulator, api: httpx.Client) -> None:
    f = uploaded(api, mp4_bytes(596.4), "video/mp4", "Big Buck Bunny")
    conforms(body(11)["file"], f, add={"source"})  # source: from 2025 on (01, 13)
    assert f["state"] == "PROCESSING" and f["createTime"] == f["updateTime"]
    emu.clock.advance(10)
    got = api.get(f"/v1beta/files/{f['name'].removeprefix('files/')}").json()
    # videoThumbnailBytes was a 2024 field
    conforms(body(12), got, add={"source"}, lack={"videoThumbnailBytes"})
    assert got["state"] == "ACTIVE" and got["videoMetadata"]["videoDuration"] == "596s"
    assert got["updateTime"] > got["createTime"] and got["expirationTime"] == f["expirationTime"]


def test_13_14_15_audio_get_list_delete(api: httpx.Client) -> None:
    f = uploaded(api, mp3(), "audio/mpeg", "Sample audio")
    fid = f["name"].removeprefix("files/")
    got = api.get(f"/v1beta/files/{fid}")
    assert got.status_code == 200
    conforms(body(13), got.json())
    listed = api.get("/v1beta/files")
    conforms(body(14), listed.json())
    deleted = api.delete(f"/v1beta/files/{fid}")
    assert deleted.status_code == 200 and deleted.content == b"{}\n"  # as 15's raw text
    conforms(body(15), deleted.json())


def test_16_start_answers_200_with_a_plain_upload_url(api: httpx.Client) -> None:
    r = start(api, "image/png", 10, None)
    assert r.status_code == 200 and " " not in r.headers["x-goog-upload-url"]


def _start_request(base: str, *, key_in_query: bool) -> httpx.Request:
    return httpx.Request(
        "POST", f"{base}/upload/v1beta/files" + (f"?key={KEY}" if key_in_query else ""),
        headers={"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
                 "X-Goog-Upload-Header-Content-Length": "3",
                 "X-Goog-Upload-Header-Content-Type": "image/png",
                 **({} if key_in_query else {"x-goog-api-key": KEY})},
        json={"file": {}})


@pytest.mark.parametrize("key_in_query,quirk,embedded", [
    (True, False, True),  # as wire/16: the REST sample's ?key= comes back in the URL
    (False, False, False),  # the header keeps it out, as the SDK does
    (False, True, True),  # the quirk: every upload URL carries it
])  # fmt: skip
def test_16_a_start_sent_with_key_in_the_query_gets_it_in_the_upload_url(
        key_in_query: bool, quirk: bool, embedded: bool) -> None:
    with Emulator(EmulatorConfig(key=KEY, key_in_upload_url=quirk)) as e, httpx.Client() as h:
        r = h.send(_start_request(e.base_url, key_in_query=key_in_query))
        assert r.status_code == 200, r.text
        url = r.headers["x-goog-upload-url"]
        assert (f"key={KEY}" in url) is embedded and " " not in url
        # Chunk requests carry no key: the URL without one still serves (what a
        # client that kept it without the key resumes with).
        bare = url.split("&key=")[0]
        done = h.post(bare, headers={"X-Goog-Upload-Command": "upload, finalize",
                                     "X-Goog-Upload-Offset": "0"}, content=b"abc")
        assert done.status_code == 200 and done.json()["file"]["sizeBytes"] == "3"


# -- errors around files -----------------------------------------------------
def test_02_storage_quota_full() -> None:
    with Emulator(EmulatorConfig(key=KEY, max_project_bytes=1000)) as e:
        with httpx.Client(base_url=e.base_url, headers={"x-goog-api-key": KEY}) as api:
            r = start(api, "image/png", 2000, None)
    assert r.status_code == status_of(2)
    conforms(body(2), r.json())
    assert r.json()["error"]["message"] == body(2)["error"]["message"].replace(
        "21474836480", "1000"
    )


def test_04_unsupported_mime(api: httpx.Client) -> None:
    r = finalize(api, b"{}\n", "jsonl")
    assert r.status_code == status_of(4) and r.headers["x-goog-upload-status"] == "final"
    conforms(body(4), r.json())
    assert r.json()["error"]["message"] == "Unsupported MIME type: jsonl"


def test_05_get_unknown_file(api: httpx.Client) -> None:
    r = api.get("/v1beta/files/never0created")
    assert r.status_code == 403
    conforms(body(5), r.json(), add={"status"})  # 05 did not print it; 06 shows it
    assert r.json()["error"]["message"] == (
        "You do not have permission to access the File never0created or it may not exist."
    )


def test_06_generate_with_a_gone_file(api: httpx.Client) -> None:
    f = uploaded(api, png_bytes(8, 8), "image/png")
    api.delete(f"/v1beta/files/{f['name'].removeprefix('files/')}")
    r = generate(api, "gemini-2.5-flash", f)
    assert r.status_code == status_of(6)
    conforms(body(6), r.json())
    assert r.json()["error"]["status"] == "PERMISSION_DENIED"


def test_07_generate_before_active(api: httpx.Client) -> None:
    f = uploaded(api, mp4_bytes(2.0), "video/mp4")
    r = generate(api, "gemini-2.5-flash", f)
    assert r.status_code == status_of(7)
    conforms(body(7), r.json())
    fid = f["name"].removeprefix("files/")
    assert r.json()["error"]["message"] == (
        f"The File {fid} is not in an ACTIVE state and usage is not allowed."
    )


@pytest.mark.parametrize(
    "number,key",
    [(8, "AIza" + "y" * 35), (9, "INVALID_KEY_BLAH"), (10, "AIza" + "z" * 35)],
)
def test_08_09_10_bad_key(emu: Emulator, number: int, key: str) -> None:
    r = httpx.get(f"{emu.base_url}/v1beta/files", headers={"x-goog-api-key": key})
    assert r.status_code == status_of(number)
    conforms(body(number), r.json())
    if number == 9:  # a bogus key is echoed back, as live
        assert r.json()["error"]["details"][2]["detail"] == "Invalid API key: INVALID_KEY_BLAH"
    else:
        assert len(r.json()["error"]["details"]) == 2
    assert r.text.startswith('{\n  "error": {\n    "code": 400,\n')  # pretty, as 08's raw


# -- generateContent ----------------------------------------------------------
def test_17_audio_on_a_model_without_thinking(emu: Emulator, api: httpx.Client) -> None:
    f = uploaded(api, mp3(), "audio/mpeg")
    r = generate(api, "gemini-2.0-flash", f, "Summarize this clips")
    assert r.status_code == 200
    # avgLogprobs was a 2.0-era extra; index and responseId are in later answers (19)
    conforms(body(17), r.json(), lack={"avgLogprobs"}, add={"index", "responseId"})
    usage = r.json()["usageMetadata"]
    assert "thoughtsTokenCount" not in usage
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert [d["modality"] for d in usage["promptTokensDetails"]] == ["TEXT", "AUDIO"]


def test_18_image_on_1_5_flash(emu: Emulator, api: httpx.Client) -> None:
    # Shut down in 2025, not in the default catalogue: served again for the sample's era.
    emu.models.add(ModelSpec("gemini-1.5-flash", "Gemini 1.5 Flash", family="2.0", levels=(),
                             default_level=None))
    f = uploaded(api, png_bytes(300, 200), "image/png")
    r = generate(api, "gemini-1.5-flash", f, "Write a detailed alt text for this image.")
    conforms(body(18), r.json(), lack={"avgLogprobs"}, add={"index", "responseId"})
    details = r.json()["usageMetadata"]["promptTokensDetails"]
    assert details[1] == {"modality": "IMAGE", "tokenCount": 258}


def test_40_batches_list_while_running_and_19_a_results_line(
        emu: Emulator, api: httpx.Client) -> None:
    req = {"contents": [{"parts": [{"text": "Explain AI briefly."}]}]}
    made = api.post("/v1beta/models/gemini-2.5-flash:batchGenerateContent", json={"batch": {
        "displayName": "my-batch-job", "inputConfig": {"requests": {"requests": [
            {"request": req}] * 4}}}})
    assert made.status_code == 200, made.text
    emu.clock.advance(emu.batches.pending + 1)  # running, about one in four done
    emu.clock.advance((emu.batches.duration - emu.batches.pending) * 0.3)
    got = api.get("/v1beta/batches").json()
    conforms(body(40), got)
    stats = got["operations"][0]["metadata"]["batchStats"]
    assert got["operations"][0]["metadata"]["state"] == "BATCH_STATE_RUNNING"
    assert "failedRequestCount" not in stats  # a zero count is left out
    # The results of a file job: each line {"response", "key"} in 19's response shape.
    line = {"key": "request_1", "request": req}
    up = uploaded(api, (json.dumps(line) + "\n").encode(), "application/jsonl")
    job = api.post("/v1beta/models/gemini-2.5-flash:batchGenerateContent", json={"batch": {
        "displayName": "f", "inputConfig": {"fileName": up["name"]}}}).json()
    emu.clock.advance(emu.batches.duration + 1)
    done = api.get(f"/v1beta/{job['name']}").json()
    assert done["done"] is True and done["response"] == done["metadata"]["output"]
    result = done["response"]["responsesFile"]
    assert api.get(f"/v1beta/{result}").status_code == 400  # files.get refuses it
    data = api.get(f"/download/v1beta/{result}:download", params={"alt": "media"})
    (row,) = [json.loads(x) for x in data.text.splitlines()]
    assert row["key"] == "request_1"
    conforms(body(19)[0]["response"], row["response"])


@pytest.mark.parametrize("item", [0, 1])
def test_19_thinking_by_default_on_2_5(api: httpx.Client, item: int) -> None:
    prompt = ["Explain AI briefly.", "Explain qubits."][item]
    got = generate(api, "gemini-2.5-flash", None, prompt).json()
    conforms(body(19)[item]["response"], got)
    u = got["usageMetadata"]
    assert u["thoughtsTokenCount"] > 0
    assert u["totalTokenCount"] == (
        u["promptTokenCount"] + u["candidatesTokenCount"] + u["thoughtsTokenCount"]
    )
    assert generate(api, "gemini-2.5-flash", None, prompt).json() == got  # deterministic


@pytest.mark.parametrize(
    "config",
    [{"thinkingConfig": {"thinkingBudget": 0}}, {"thinking_config": {"thinking_budget": 0}}],
)
def test_thinking_budget_0_removes_the_key(api: httpx.Client, config: dict) -> None:
    u = generate(api, "gemini-2.5-flash", None, **config).json()["usageMetadata"]
    assert "thoughtsTokenCount" not in u
    assert u["totalTokenCount"] == u["promptTokenCount"] + u["candidatesTokenCount"]


def test_thinking_budget_caps_thoughts(api: httpx.Client) -> None:
    u = generate(api, "gemini-2.5-pro", None, thinkingConfig={"thinkingBudget": 128})
    assert u.json()["usageMetadata"]["thoughtsTokenCount"] == 128


def test_21_max_tokens_while_thinking(api: httpx.Client) -> None:
    r = generate(api, "gemini-2.5-pro", None, maxOutputTokens=100)
    # createTime, billablePromptUsage, trafficType are Vertex-only; index is in 19
    vertex = {"createTime", "billablePromptUsage", "trafficType"}
    conforms(body(21), r.json(), lack=vertex, add={"index"})
    got = r.json()
    assert got["candidates"][0]["content"] == {"role": "model"}
    assert got["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert got["usageMetadata"]["thoughtsTokenCount"] == 100


def test_22_prompt_blocked_prohibited(emu: Emulator, api: httpx.Client) -> None:
    emu.add_fault(Fault(kind="blocked", reason="PROHIBITED_CONTENT"))
    r = generate(api, "gemini-2.0-flash", None)
    assert r.status_code == 200
    conforms(body(22), r.json(), add={"responseId"})  # lobehub's 22 variant has it


def test_23_prompt_blocked_safety_with_ratings(emu: Emulator, api: httpx.Client) -> None:
    emu.add_fault(Fault(kind="blocked"))
    r = generate(api, "gemini-2.5-flash", None)
    # 23 (early 2024) shows only promptFeedback; 22 shows the rest
    conforms(body(23), r.json(), add={"usageMetadata", "modelVersion", "responseId"})
    assert "candidates" not in r.json()


def test_24_candidate_blocked(emu: Emulator, api: httpx.Client) -> None:
    emu.add_fault(Fault(kind="blocked", stage="candidate"))
    r = generate(api, "gemini-2.0-flash", None)
    conforms(body(24), r.json(), add={"promptTokensDetails", "responseId"})
    (cand,) = r.json()["candidates"]
    assert cand["finishReason"] == "SAFETY" and "content" not in cand
    assert [x.get("blocked") for x in cand["safetyRatings"]] == [None, None, None, True]


def test_38_json_mode_head(api: httpx.Client) -> None:
    head = json.loads(sample(38)["raw_body_head"] + "}}]}")  # cut by `head`; closed here
    r = generate(api, "gemini-2.5-flash", None, responseMimeType="application/json")
    got = r.json()
    conforms(head["candidates"][0]["content"], got["candidates"][0]["content"])


@pytest.mark.parametrize("tail", ["}", ', "generation_config": {"temperature": 0},}'])
def test_38_raw_newline_inside_a_json_string_is_accepted(api: httpx.Client, tail: str) -> None:
    # The notebook's -d '...' literal spans two lines: a raw newline in the prompt,
    # and a trailing comma after snake_case config (38).
    raw = '{"contents": [{"parts": [{"text": "Give me a list\nof cookies"}]}]' + tail
    assert "\n" in raw and "\\n" not in raw
    r = api.post("/v1beta/models/gemini-2.5-flash:generateContent", content=raw.encode(),
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert "list\nof cookies" in r.json()["candidates"][0]["content"]["parts"][0]["text"]


# -- injected 429s and server errors -------------------------------------------
@pytest.mark.parametrize(
    "number,spec,add",
    [
        (25, "per_minute", {"type.googleapis.com/google.rpc.RetryInfo"}),
        (25, "input_tokens", set()),
        (26, "input_tokens+per_minute+per_day", {
            "type.googleapis.com/google.rpc.Help", "type.googleapis.com/google.rpc.RetryInfo"}),
        (28, "input_tokens", {"type.googleapis.com/google.rpc.RetryInfo"}),  # cut in 28
        (29, "bare", set()),
    ],
)  # fmt: skip
def test_quota_429s(emu: Emulator, api: httpx.Client, number: int, spec: str, add: set) -> None:
    emu.add_fault(Fault(status=429, quota=spec, match="generate"))
    r = generate(api, "gemini-2.0-flash", None)
    assert r.status_code == 429
    conforms(body(number), r.json(), add=add)
    err = r.json()["error"]
    if spec == "bare":
        assert err == body(29)["error"]
    else:
        assert err["message"].endswith("\nPlease retry in 47.434392449s.")
        kinds = [d["@type"].rsplit(".", 1)[1] for d in err["details"]]
        assert kinds == ["Help", "QuotaFailure", "RetryInfo"]  # the late-2025 order (27, 28)
        assert err["details"][2]["retryDelay"] == "47s"
        dims = err["details"][1]["violations"][0]["quotaDimensions"]
        assert dims == {"location": "global", "model": "gemini-2.0-flash"}


def test_27_details_tail(emu: Emulator, api: httpx.Client) -> None:
    emu.add_fault(Fault(status=429, quota="per_day+per_minute+input_tokens", retry_delay="47s"))
    r = generate(api, "gemini-2.0-flash", None)
    details = r.json()["error"]["details"]
    conforms(sample(27)["body_fragment"], details, add={"type.googleapis.com/google.rpc.Help"})
    ids = [v["quotaId"] for v in details[1]["violations"]]
    assert ids == [v["quotaId"] for v in sample(27)["body_fragment"][0]["violations"]]
    assert details[2] == {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "47s"}


def test_28_paid_tier_429_word_for_word() -> None:
    # The paid tier's wording: its usage link, no ", model: M" after the limit (wire/28).
    config = EmulatorConfig(key=KEY, quota_tier="paid", quota_tpm=4000000)
    with Emulator(config) as emu, httpx.Client(
            base_url=emu.base_url, headers={"x-goog-api-key": KEY}, timeout=10) as api:
        emu.add_fault(Fault(status=429, quota="input_tokens", match="generate"))
        r = generate(api, "gemini-2.0-flash", None)
    live = body(28)["error"]
    got = r.json()["error"]
    assert got["message"] == live["message"]
    assert got["details"][:2] == live["details"]  # 28 is cut inside the RetryInfo


def _refused(config: EmulatorConfig) -> dict[str, Any]:
    """The error of the first generateContent the emulator's counted quotas refuse."""
    with Emulator(config) as emu, httpx.Client(
            base_url=emu.base_url, headers={"x-goog-api-key": KEY}, timeout=10) as api:
        for _ in range(3):
            r = generate(api, "gemini-2.0-flash", None)
            if r.status_code == 429:
                return r.json()["error"]
    raise AssertionError("never refused")


def test_counted_quota_several_violations_carry_no_value() -> None:
    err = _refused(EmulatorConfig(key=KEY, quota_rpm=1, quota_rpd=1))
    conforms(sample(27)["body_fragment"][0], err["details"][1])
    violations = err["details"][1]["violations"]
    assert len(violations) == 2 and all("quotaValue" not in v for v in violations)  # 26, 27
    lines = [ln for ln in err["message"].splitlines() if ln.startswith("* Quota exceeded")]
    assert len(lines) == 2 and all(ln.endswith(", model: gemini-2.0-flash") for ln in lines)


def test_counted_quota_paid_tier_wording() -> None:
    err = _refused(EmulatorConfig(key=KEY, quota_rpm=1, quota_tier="paid"))
    metric = "generativelanguage.googleapis.com/generate_content_paid_tier_requests"
    assert f"https://ai.dev/usage?tab=rate-limit. \n* Quota exceeded for metric: {metric}, " \
           "limit: 1\nPlease retry in " in err["message"]
    (v,) = err["details"][1]["violations"]
    assert v["quotaId"] == "GenerateRequestsPerMinutePerProjectPerModel" and v["quotaValue"] == "1"


def test_novalue_shape_is_the_mid_2025_form() -> None:
    err = _refused(EmulatorConfig(key=KEY, quota_rpm=1, quota_shape="novalue"))
    live = body(25)["error"]
    assert err["message"] == live["message"]  # no limit lines, no "Please retry in"
    kinds = [d["@type"] for d in err["details"]]
    assert kinds == [d["@type"] for d in live["details"]]  # QuotaFailure, Help, RetryInfo
    conforms(body(26)["error"]["details"][0], err["details"][0])  # violations without values


@pytest.mark.parametrize("number", [31, 32, 34])
def test_server_errors(emu: Emulator, api: httpx.Client, number: int) -> None:
    emu.add_fault(Fault(status=status_of(number), match="generate"))
    r = generate(api, "gemini-2.5-pro", None)
    assert r.status_code == status_of(number)
    assert r.json() == body(number)  # word for word, no details


def test_client_reads_the_emulators_quota_429(emu: Emulator, api: httpx.Client) -> None:
    emu.add_fault(Fault(status=429, quota="per_day", retry_delay="12.5s"))
    r = generate(api, "gemini-2.5-flash", None)
    e = ApiError.from_body(r.status_code, r.content)
    assert e.retryable and e.retry_delay == 12.0  # RetryInfo in whole seconds wins
    found = quota.violations(e.details, e.message)  # the daemon's parser
    assert [v.quota_id for v in found] == ["GenerateRequestsPerDayPerProjectPerModel-FreeTier"]
    assert found[0].model == "gemini-2.5-flash"
    # No quotaValue in the QuotaFailure (as live, wire/26-27): the limit is the message's line.
    (qf,) = [d for d in e.details if d["@type"] == quota.QUOTA_FAILURE]
    assert "quotaValue" not in qf["violations"][0]
    assert found[0].limit == 250


@pytest.mark.parametrize(
    "model,thinks",
    [("gemini-2.5-flash", True), ("models/gemini-2.5-pro", True), ("gemini-3.8-flash", True),
     ("gemini-3.1-pro-preview", True), ("gemini-2.5-flash-lite", False),
     ("gemini-3.5-flash-lite", False), ("gemini-2.0-flash", False)],
)  # fmt: skip
def test_which_models_think_by_default(api: httpx.Client, model: str, thinks: bool) -> None:
    u = generate(api, model.removeprefix("models/"), None).json()["usageMetadata"]
    assert ("thoughtsTokenCount" in u) is thinks


# -- models (issue 16) -------------------------------------------------------
RETIRED = "gemini-2.0-pro"  # wire/41's own model


@pytest.fixture
def retiring() -> Iterator[tuple[Emulator, httpx.Client]]:
    with Emulator(EmulatorConfig(key=KEY, retired_models=("gemini-2.5-flash",))) as e:
        with httpx.Client(base_url=e.base_url, headers={"x-goog-api-key": KEY},
                          timeout=10) as c:
            yield e, c


@pytest.mark.parametrize("model", [RETIRED, "gemini-2.5-flash"])
def test_41_generate_on_a_retired_or_unknown_model(retiring, model: str) -> None:
    emu, api = retiring
    f = uploaded(api, png_bytes(8, 8), "image/png")
    r = generate(api, model, f)
    assert r.status_code == status_of(41) == 404
    conforms(body(41), r.json())
    want = body(41)["error"]["message"].replace("gemini-2.0-pro", model)
    assert r.json()["error"]["message"] == want  # word for word, the method named
    assert "details" not in r.json()["error"]


def test_41_every_call_to_a_retired_model_names_its_method(retiring) -> None:
    _, api = retiring
    got = api.get("/v1beta/models/gemini-2.5-flash")
    assert got.status_code == 404 and got.json()["error"]["status"] == "NOT_FOUND"
    assert got.json()["error"]["message"].startswith(
        "models/gemini-2.5-flash is not found for API version v1beta, or is not supported for get.")
    counted = api.post("/v1/models/gemini-2.5-flash:countTokens", json={})
    assert counted.status_code == 404
    assert "API version v1, or is not supported for countTokens." in counted.json()["error"][
        "message"]
    listed = [m["name"] for m in api.get("/v1beta/models", params={"pageSize": 1000}).json()[
        "models"]]
    assert "models/gemini-2.5-flash" not in listed and "models/gemini-3.5-flash-lite" in listed


def test_41_a_retired_model_comes_back_when_restored(retiring) -> None:
    emu, api = retiring
    f = uploaded(api, png_bytes(8, 8), "image/png")
    emu.models.restore("gemini-2.5-flash")
    assert generate(api, "gemini-2.5-flash", f).status_code == 200


def test_37_models_list_pages_end_with_a_token_in_the_live_form(api: httpx.Client) -> None:
    first = api.get("/v1beta/models", params={"pageSize": 3})
    assert first.status_code == 200
    page = first.json()
    assert list(page) == ["models", "nextPageToken"]  # the token is the last key (37)
    token = page["nextPageToken"]
    tail = sample(37)["body_tail_as_captured"]
    live = re.search(r'"nextPageToken": "([^"]+)"', tail).group(1)
    # The same encoding: standard base64, padded, of field 1 = the last name returned.
    assert base64.b64decode(live)[:2] == b"\x0a\x24"
    assert after_token(live) == "models/gemini-2.0-flash-thinking-001"
    assert after_token(token) == page["models"][-1]["name"]
    assert base64.b64decode(token) == b"\x0a" + bytes([len(page["models"][-1]["name"])]) + \
        page["models"][-1]["name"].encode()
    names, pages, params = [], 0, {"pageSize": 3}
    while True:
        got = api.get("/v1beta/models", params=params).json()
        names += [m["name"] for m in got["models"]]
        pages += 1
        if "nextPageToken" not in got:
            break
        params = {"pageSize": 3, "pageToken": got["nextPageToken"]}
    assert len(names) == len(set(names)) == len(DEFAULT_MODELS) and pages > 1


def test_models_get_answers_the_live_fields(api: httpx.Client) -> None:
    m = api.get("/v1beta/models/gemini-3.5-flash-lite").json()
    # files-api.md, "Models": the field set (unverified by a capture)
    assert set(m) >= {"name", "version", "displayName", "description", "inputTokenLimit",
                      "outputTokenLimit", "supportedGenerationMethods", "temperature", "topP",
                      "topK", "maxTemperature", "thinking"}
    assert m["name"] == "models/gemini-3.5-flash-lite" and "generateContent" in m[
        "supportedGenerationMethods"]
