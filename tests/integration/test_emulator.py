"""The File API emulator over real loopback HTTP: every contract quirk it imitates."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediasync.emulator import (
    Emulator,
    EmulatorConfig,
    Fault,
    add_arguments,
    parse_duration,
    parse_fault_spec,
)
from mediasync.media.probe import probe, sniff
from mediasync.media.samples import png_bytes as png

KEY = "test-key"
G = 4096  # a small granularity keeps multi-chunk tests fast
NAME_RULE = (
    "File name may only contain lowercase alphanumeric characters or dashes (-) "
    "and cannot begin or end with a dash."
)


# -- sample media --------------------------------------------------------
def jpeg(w: int, h: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def wav(seconds: float, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(int(seconds * rate) * 2))
    return buf.getvalue()


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def mp4(seconds: float, moov_at_end: bool = False, mdat_bytes: int = 1000) -> bytes:
    ftyp = box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
    mvhd = box(
        b"mvhd", b"\x00" * 4 + struct.pack(">IIII", 0, 0, 1000, int(seconds * 1000)) + bytes(80)
    )
    moov = box(b"moov", mvhd)
    mdat = box(b"mdat", bytes(mdat_bytes))
    return ftyp + mdat + moov if moov_at_end else ftyp + moov + mdat


# -- helpers -------------------------------------------------------------
# One keyless client for upload URLs (building an httpx client costs ~30 ms).
BARE = httpx.Client(timeout=10)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(granularity=G)) as e:
        yield e


def client(e: Emulator) -> httpx.Client:
    return httpx.Client(base_url=e.base_url, headers={"x-goog-api-key": KEY}, timeout=10)


def start(
    c: httpx.Client,
    size: int,
    mime: str = "image/png",
    body: Any = None,
    ver: str = "v1beta",
    **headers: str,
) -> httpx.Response:
    h = {
        "X-Goog-Upload-Protocol": "resumable",
        "X-Goog-Upload-Command": "start",
        "X-Goog-Upload-Header-Content-Length": str(size),
        "X-Goog-Upload-Header-Content-Type": mime,
        "Content-Type": "application/json",
        **headers,
    }
    content = body if isinstance(body, str | bytes) else json.dumps(body or {"file": {}})
    return c.post(f"/upload/{ver}/files", headers=h, content=content)


def chunk(url: str, data: bytes, offset: int, final: bool = False) -> httpx.Response:
    # A bare client: chunk requests carry no API key, the URL authorises them.
    headers = {
        "X-Goog-Upload-Command": "upload, finalize" if final else "upload",
        "X-Goog-Upload-Offset": str(offset),
    }
    return BARE.post(url, headers=headers, content=data)


def query(url: str) -> httpx.Response:
    return BARE.post(url, headers={"X-Goog-Upload-Command": "query"})


def upload(
    c: httpx.Client, data: bytes, mime: str = "image/png", name: str | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"display_name": "sample"}
    if name:
        meta["name"] = f"files/{name}"
    r = start(c, len(data), mime, {"file": meta})
    assert r.status_code == 200, r.text
    url = r.headers["x-goog-upload-url"]
    off = 0
    while len(data) - off > G:
        assert chunk(url, data[off : off + G], off).status_code == 200
        off += G
    r = chunk(url, data[off:], off, final=True)
    assert r.status_code == 200, r.text
    assert r.headers["x-goog-upload-status"] == "final"
    return r.json()["file"]


def fid(file: dict[str, Any]) -> str:
    return file["name"].removeprefix("files/")


def gen_body(file: dict[str, Any], prompt: str = "Caption this image in one sentence.") -> dict:
    return {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"file_data": {"mime_type": file["mimeType"], "file_uri": file["uri"]}},
                    {"text": prompt},
                ],
            }
        ]
    }


def generate(c: httpx.Client, file: dict[str, Any], **kw: Any) -> httpx.Response:
    return c.post("/v1beta/models/gemini-2.5-flash:generateContent", json=gen_body(file, **kw))


def error(r: httpx.Response, code: int, status: str) -> dict[str, Any]:
    assert r.status_code == code, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["status"] == status
    return err


# -- upload protocol -----------------------------------------------------
@pytest.mark.parametrize("ver", ["v1beta", "v1"])
def test_start_answers_absolute_url_built_from_host(emu: Emulator, ver: str) -> None:
    with client(emu) as c:
        r = start(c, 10, ver=ver, Host="files.example.test:4321")
    assert r.status_code == 200
    url = r.headers["x-goog-upload-url"]
    assert url.startswith(f"http://files.example.test:4321/upload/{ver}/files?upload_id=")
    assert url.endswith("&upload_protocol=resumable")
    assert r.headers["x-goog-upload-status"] == "active"
    assert r.headers["x-goog-upload-chunk-granularity"] == str(G)
    assert int(r.headers["content-length"]) == len(r.content)


def test_default_granularity_is_8_mib() -> None:
    with Emulator() as e, client(e) as c:
        assert start(c, 1).headers["x-goog-upload-chunk-granularity"] == "8388608"


@pytest.mark.parametrize(
    "body",
    [
        {"file": {"display_name": "holiday"}},
        {"file": {"displayName": "holiday"}},
        "{'file': {'display_name': 'holiday'}}",
        "",
    ],
)
def test_start_body_shapes(emu: Emulator, body: Any) -> None:
    data = png(4, 4)
    with client(emu) as c:
        r = start(c, len(data), body=body)
        assert r.status_code == 200, r.text
        f = chunk(r.headers["x-goog-upload-url"], data, 0, final=True).json()["file"]
    assert f.get("displayName") == (None if body == "" else "holiday")


def test_multi_chunk_upload_file_resource(emu: Emulator) -> None:
    data = png(4, 4) + os.urandom(2 * G + 100)
    with client(emu) as c:
        f = upload(c, data)
        got = c.get(f"/v1/files/{fid(f)}").json()
    assert f["sizeBytes"] == str(len(data)) and f["mimeType"] == "image/png"
    assert base64.b64decode(f["sha256Hash"]).decode() == hashlib.sha256(data).hexdigest()
    assert f["state"] == "ACTIVE" and f["source"] == "UPLOADED"
    assert f["uri"] == f"{emu.base_url}/v1beta/files/{fid(f)}"
    assert got["uri"] == f"{emu.base_url}/v1/files/{fid(f)}"
    assert f["createTime"].endswith("Z") and "." in f["createTime"]
    stats = emu.stats()
    assert stats["uploads_finalized"] == 1 and stats["bytes_received"] == len(data)
    assert stats["requests"]["chunk"] == 2 and stats["requests"]["finalize"] == 1


def test_non_final_chunk_must_be_a_multiple_of_granularity(emu: Emulator) -> None:
    with client(emu) as c:
        url = start(c, 3 * G).headers["x-goog-upload-url"]
    r = chunk(url, bytes(1000), 0)
    error(r, 400, "INVALID_ARGUMENT")
    assert r.headers["x-goog-upload-status"] == "active"
    assert query(url).headers["x-goog-upload-size-received"] == "0"


def test_offset_mismatch_reports_bytes_received(emu: Emulator) -> None:
    data = png(4, 4) + bytes(2 * G)
    with client(emu) as c:
        url = start(c, len(data)).headers["x-goog-upload-url"]
    assert chunk(url, data[:G], 0).status_code == 200
    r = chunk(url, data[G : 2 * G], 0)
    err = error(r, 400, "INVALID_ARGUMENT")
    assert str(G) in err["message"]
    assert r.headers["x-goog-upload-size-received"] == str(G)
    assert r.headers["x-goog-upload-status"] == "active"
    assert chunk(url, data[G:], G, final=True).status_code == 200


def test_finalize_byte_count_must_match_declared(emu: Emulator) -> None:
    with client(emu) as c:
        url = start(c, 500).headers["x-goog-upload-url"]
    error(chunk(url, png(2, 2)[:400], 0, final=True), 400, "INVALID_ARGUMENT")
    # Not committed: the full body still finalizes.
    data = png(2, 2)
    with client(emu) as c:
        url = start(c, len(data)).headers["x-goog-upload-url"]
    assert chunk(url, data, 0, final=True).status_code == 200


def test_query_active_then_final_with_file(emu: Emulator) -> None:
    data = png(8, 8) + bytes(G)
    with client(emu) as c:
        url = start(c, len(data)).headers["x-goog-upload-url"]
    r = query(url)
    assert r.status_code == 200 and r.headers["x-goog-upload-status"] == "active"
    assert r.headers["x-goog-upload-size-received"] == "0"
    chunk(url, data[:G], 0)
    assert query(url).headers["x-goog-upload-size-received"] == str(G)
    done = chunk(url, data[G:], G, final=True).json()["file"]
    r = query(url)
    assert r.headers["x-goog-upload-status"] == "final"
    assert r.json()["file"]["name"] == done["name"]
    assert r.headers["x-goog-upload-size-received"] == str(len(data))


def test_unknown_upload_id(emu: Emulator) -> None:
    r = query(f"{emu.base_url}/upload/v1beta/files?upload_id=nope&upload_protocol=resumable")
    assert r.status_code in (400, 404) and "error" in r.json()


def test_chunked_transfer_encoding_body(emu: Emulator) -> None:
    data = png(16, 16) + os.urandom(3 * G)

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    with client(emu) as c:
        url = start(c, len(data)).headers["x-goog-upload-url"]
    r = BARE.post(
        url,
        headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
        content=pieces(),
    )
    assert r.status_code == 200, r.text
    f = r.json()["file"]
    assert base64.b64decode(f["sha256Hash"]).decode() == hashlib.sha256(data).hexdigest()


def test_zero_byte_file_is_one_finalize_and_failed(emu: Emulator) -> None:
    with client(emu) as c:
        url = start(c, 0).headers["x-goog-upload-url"]
        f = chunk(url, b"", 0, final=True).json()["file"]
    assert f["sizeBytes"] == "0" and f["state"] == "FAILED" and f["error"]["message"]


def test_unsupported_mime_on_finalize(emu: Emulator) -> None:
    with client(emu) as c:
        url = start(c, 5, mime="text/plain").headers["x-goog-upload-url"]
    r = chunk(url, b"hello", 0, final=True)
    err = error(r, 400, "INVALID_ARGUMENT")
    assert err["message"] == "Unsupported MIME type: text/plain"
    assert r.headers["x-goog-upload-status"] == "final"


def test_file_over_2gb_refused_at_start(emu: Emulator) -> None:
    with client(emu) as c:
        err = error(start(c, 2 * 1000**3 + 1, mime="video/mp4"), 400, "INVALID_ARGUMENT")
    assert "2000000000" in err["message"]


def test_project_quota_429_with_quota_failure() -> None:
    with Emulator(EmulatorConfig(max_project_bytes=3000)) as e, client(e) as c:
        f = upload(c, png(8, 8) + bytes(2000 - len(png(8, 8))))
        err = error(start(c, 1500), 429, "RESOURCE_EXHAUSTED")
        detail = err["details"][0]
        assert detail["@type"] == "type.googleapis.com/google.rpc.QuotaFailure"
        assert detail["violations"][0]["quotaId"] == "FileStorageBytesPerProject"
        assert c.delete(f"/v1beta/files/{fid(f)}").json() == {}
        assert start(c, 1500).status_code == 200


def test_a_full_store_in_wire_03s_form_and_a_store_resized_while_serving() -> None:
    # storage_form="retryinfo": wire/02's details plus wire/03's RetryInfo of INT64_MAX s.
    config = EmulatorConfig(max_project_bytes=3000, storage_form="retryinfo")
    with Emulator(config) as e, client(e) as c:
        upload(c, png(8, 8) + bytes(2000 - len(png(8, 8))))
        err = error(start(c, 1500), 429, "RESOURCE_EXHAUSTED")
        assert err["details"][-1] == {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                      "retryDelay": "9223372036854775807s"}
        assert "limit: 3000" in err["message"]
        e.store.max_project_bytes = 4000  # the store is settable while serving
        assert start(c, 1500).status_code == 200


# -- names ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["-abc", "abc-", "ABC", "a_b", "a" * 41, "a.b"])
def test_bad_names(emu: Emulator, name: str) -> None:
    with client(emu) as c:
        err = error(start(c, 10, body={"file": {"name": f"files/{name}"}}), 400, "INVALID_ARGUMENT")
    assert err["message"] == NAME_RULE


def test_chosen_name_and_already_exists(emu: Emulator) -> None:
    with client(emu) as c:
        f = upload(c, png(4, 4), name="my-photo-1")
        assert f["name"] == "files/my-photo-1"
        error(start(c, 10, body={"file": {"name": "files/my-photo-1"}}), 409, "ALREADY_EXISTS")
        assert len("a" * 40) == 40 and upload(c, png(4, 4), name="a" * 40)["name"].endswith("a")


# -- lifecycle -----------------------------------------------------------
def test_processing_then_active_and_failed_precondition() -> None:
    cfg = EmulatorConfig(granularity=G, processing_delay=5.0, video_processing_delay=60.0)
    with Emulator(cfg) as e, client(e) as c:
        img = upload(c, png(4, 4))
        vid = upload(c, mp4(2.0), mime="video/mp4")
        assert img["state"] == "PROCESSING" and vid["state"] == "PROCESSING"
        err = error(generate(c, img), 400, "FAILED_PRECONDITION")
        assert err["message"] == (
            f"The File {fid(img)} is not in an ACTIVE state and usage is not allowed."
        )
        e.clock.advance(6)
        assert c.get(f"/v1beta/files/{fid(img)}").json()["state"] == "ACTIVE"
        assert c.get(f"/v1beta/files/{fid(vid)}").json()["state"] == "PROCESSING"
        assert generate(c, img).status_code == 200
        e.clock.advance(60)
        got = c.get(f"/v1beta/files/{fid(vid)}").json()
        assert got["state"] == "ACTIVE" and got["videoMetadata"] == {"videoDuration": "2s"}


@pytest.mark.parametrize(
    "data,mime",
    [(jpeg(10, 10), "image/png"), (png(4, 4), "video/mp4"), (b"not audio at all", "audio/wav")],
)
def test_lying_bytes_fail(emu: Emulator, data: bytes, mime: str) -> None:
    with client(emu) as c:
        f = upload(c, data, mime=mime)
        emu.clock.advance(60)  # video goes through PROCESSING first
        f = c.get(f"/v1beta/files/{fid(f)}").json()
        assert f["state"] == "FAILED" and f["error"]["message"]
        error(generate(c, f), 400, "FAILED_PRECONDITION")


def test_missing_file_is_403_everywhere(emu: Emulator) -> None:
    with client(emu) as c:
        f = upload(c, png(4, 4))
        assert c.delete(f"/v1beta/files/{fid(f)}").json() == {}
        msg = f"You do not have permission to access the File {fid(f)} or it may not exist."
        for r in (
            c.get(f"/v1beta/files/{fid(f)}"),
            c.delete(f"/v1/files/{fid(f)}"),
            generate(c, f),
            c.get("/v1beta/files/never-was"),
        ):
            err = error(r, 403, "PERMISSION_DENIED")
            assert err["message"] in (msg, msg.replace(fid(f), "never-was"))
        assert emu.stats()["deletes"] == 1


def test_expiry_via_clock(emu: Emulator) -> None:
    from datetime import datetime, timedelta

    with client(emu) as c:
        f = upload(c, png(4, 4))
        created = datetime.fromisoformat(f["createTime"].replace("Z", "+00:00"))
        expires = datetime.fromisoformat(f["expirationTime"].replace("Z", "+00:00"))
        # createTime + 48 h minus a few ms, 9 fractional digits (wire/01, 11)
        assert timedelta(hours=48, seconds=-1) < expires - created < timedelta(hours=48)
        assert len(f["expirationTime"].split(".")[1]) == len("123456789Z")
        emu.clock.advance(47 * 3600)
        assert c.get(f"/v1beta/files/{fid(f)}").status_code == 200
        emu.clock.advance(3601)
        error(c.get(f"/v1beta/files/{fid(f)}"), 403, "PERMISSION_DENIED")
        assert c.get("/v1beta/files").json() == {}
    assert emu.stats()["live_bytes"] == 0 and emu.list_files() == []


def test_list_paging_order_and_empty(emu: Emulator) -> None:
    with client(emu) as c:
        assert c.get("/v1beta/files").json() == {}
        made = [upload(c, png(2, 2 + i))["name"] for i in range(5)]
        seen, token, pages = [], None, 0
        while True:
            params = {"pageSize": 2, **({"pageToken": token} if token else {})}
            body = c.get("/v1/files", params=params).json()
            pages += 1
            seen += [f["name"] for f in body["files"]]
            token = body.get("nextPageToken")
            if not token:
                break
        assert seen == made and pages == 3
        assert len(c.get("/v1beta/files").json()["files"]) == 5  # default 10
        error(c.get("/v1beta/files", params={"pageToken": "garbage!"}), 400, "INVALID_ARGUMENT")


def test_list_page_size_clamps_to_100(emu: Emulator) -> None:
    with client(emu) as c:
        for _ in range(101):
            upload(c, png(1, 1))
        body = c.get("/v1beta/files", params={"pageSize": 1000}).json()
    assert len(body["files"]) == 100 and body["nextPageToken"]


# -- keys ----------------------------------------------------------------
def test_keys() -> None:
    with Emulator(EmulatorConfig(key="right", granularity=G)) as e:
        bare = httpx.Client(base_url=e.base_url)
        err = error(bare.get("/v1beta/files"), 403, "PERMISSION_DENIED")
        assert "API Key" in err["message"]
        assert bare.get("/v1beta/files", params={"key": "right"}).status_code == 200
        err = error(
            bare.get("/v1beta/files", headers={"x-goog-api-key": "wrong"}), 400, "INVALID_ARGUMENT"
        )
        info = err["details"][0]
        assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
        assert info["reason"] == "API_KEY_INVALID" and info["domain"] == "googleapis.com"
        # start needs the key; chunks (sent keyless by `chunk`) do not
        right = httpx.Client(base_url=e.base_url, headers={"x-goog-api-key": "right"})
        assert upload(right, png(2, 2))["state"] == "ACTIVE"
    with Emulator() as e:  # no key configured: any non-empty key
        assert httpx.get(f"{e.base_url}/v1/files?key=anything").status_code == 200
        assert httpx.get(f"{e.base_url}/v1/files?key=").status_code == 403


# -- generateContent -----------------------------------------------------
def test_generate_labelled_and_usage(emu: Emulator) -> None:
    prompt = "Caption this image in one sentence."
    with client(emu) as c:
        img = upload(c, png(640, 480))
        body = generate(c, img, prompt=prompt).json()
        again = generate(c, img, prompt=prompt).json()
    text = body["candidates"][0]["content"]["parts"][0]["text"]
    assert text.startswith("[mediasync emulator] image/png, 640×480 px")
    assert prompt in text and body == again  # deterministic
    cand = body["candidates"][0]
    assert cand["finishReason"] == "STOP" and cand["content"]["role"] == "model"
    usage = body["usageMetadata"]
    details = {d["modality"]: d["tokenCount"] for d in usage["promptTokensDetails"]}
    assert details == {"TEXT": len(prompt) // 4, "IMAGE": 258}
    assert usage["promptTokenCount"] == 258 + len(prompt) // 4
    # 2.5 thinks by default: thoughts are billed outside candidatesTokenCount (wire/19)
    assert usage["thoughtsTokenCount"] > 0
    assert usage["totalTokenCount"] == (
        usage["promptTokenCount"] + usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    )
    assert body["modelVersion"] and body["responseId"]


def test_generate_tokens_for_big_image_audio_video(emu: Emulator) -> None:
    with client(emu) as c:
        big = upload(c, png(1600, 800))  # 3×2 tiles of 768
        sound = upload(c, wav(2.0), mime="audio/wav")
        film = upload(c, mp4(3.5, moov_at_end=True, mdat_bytes=200_000), mime="video/mp4")
        # video is PROCESSING at first, without metadata (wire/11)
        assert film["state"] == "PROCESSING" and "videoMetadata" not in film
        emu.clock.advance(60)
        film = c.get(f"/v1beta/files/{fid(film)}").json()
        assert film["videoMetadata"] == {"videoDuration": "3s"}  # whole seconds (wire/12)
        cases = [(big, "IMAGE", 258 * 6), (sound, "AUDIO", 64), (film, "VIDEO", 1050)]
        for f, modality, tokens in cases:
            body = c.post(
                "/v1/models/gemini-2.5-flash:generateContent",
                json={
                    "contents": [
                        {"parts": [{"fileData": {"fileUri": f["uri"], "mimeType": f["mimeType"]}}]}
                    ]
                },
            ).json()
            details = {
                d["modality"]: d["tokenCount"] for d in body["usageMetadata"]["promptTokensDetails"]
            }
            assert details == {modality: tokens}
    assert "3.5 s" in body["candidates"][0]["content"]["parts"][0]["text"]


def test_generate_latency() -> None:
    import time

    with Emulator(EmulatorConfig(generate_latency=0.3)) as e, client(e) as c:
        f = upload(c, png(2, 2))
        t = time.monotonic()
        assert generate(c, f).status_code == 200
        assert time.monotonic() - t >= 0.3


# -- faults --------------------------------------------------------------
def test_status_fault_with_retry_info_and_times(emu: Emulator) -> None:
    emu.add_fault(Fault(kind="status", status=429, retry_delay="0.2s", match="list", times=2))
    with client(emu) as c:
        for _ in range(2):
            err = error(c.get("/v1beta/files"), 429, "RESOURCE_EXHAUSTED")
            assert err["details"] == [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.2s"}
            ]
        assert c.get("/v1beta/files").status_code == 200
        emu.add_fault(Fault(kind="status", status=503, match="chunk"))
        data = png(2, 2)
        url = start(c, len(data)).headers["x-goog-upload-url"]
        error(chunk(url, data, 0, final=True), 503, "UNAVAILABLE")
        assert chunk(url, data, 0, final=True).status_code == 200  # nothing was committed
    assert emu.stats()["faults_fired"] == 3


def test_slow_fault(emu: Emulator) -> None:
    import time

    emu.add_fault(Fault(kind="slow", delay=0.3, match="get"))
    with client(emu) as c:
        t = time.monotonic()
        error(c.get("/v1beta/files/x"), 403, "PERMISSION_DENIED")
        assert time.monotonic() - t >= 0.3


def test_cut_commits_partial_then_resume(emu: Emulator) -> None:
    data = png(8, 8) + os.urandom(3 * G)
    with client(emu) as c:
        url = start(c, len(data)).headers["x-goog-upload-url"]
    emu.add_fault(Fault(kind="cut", after_bytes=G, match="chunk"))
    with pytest.raises(httpx.TransportError):
        chunk(url, data, 0, final=True)
    r = query(url)
    assert r.headers["x-goog-upload-status"] == "active"
    assert r.headers["x-goog-upload-size-received"] == str(G)
    f = chunk(url, data[G:], G, final=True).json()["file"]
    assert base64.b64decode(f["sha256Hash"]).decode() == hashlib.sha256(data).hexdigest()


def test_lost_finalize_is_adopted_by_query(emu: Emulator) -> None:
    emu.add_fault(Fault(kind="lost_finalize"))
    data = png(8, 8)
    with client(emu) as c:
        url = start(c, len(data)).headers["x-goog-upload-url"]
    with pytest.raises(httpx.TransportError):
        chunk(url, data, 0, final=True)
    r = query(url)
    assert r.headers["x-goog-upload-status"] == "final"
    f = r.json()["file"]
    assert f["sizeBytes"] == str(len(data))
    assert [x["name"] for x in emu.list_files()] == [f["name"]]
    # A retried finalize gets the same file, not a second copy.
    assert chunk(url, data, 0, final=True).json()["file"]["name"] == f["name"]
    assert emu.stats()["uploads_finalized"] == 1


def test_blocked_generation(emu: Emulator) -> None:
    with client(emu) as c:
        f = upload(c, png(4, 4))
        emu.add_fault(Fault(kind="blocked"))
        body = generate(c, f).json()
        assert body["promptFeedback"]["blockReason"] == "SAFETY"
        assert "candidates" not in body and body["usageMetadata"]["promptTokenCount"] > 0
        assert "candidates" in generate(c, f).json()


def test_http_control_endpoints(emu: Emulator) -> None:
    with client(emu) as c:
        r = c.post("/_emulator/faults", json={"kind": "status", "status": 500, "match": "get"})
        assert r.status_code == 200
        error(c.get("/v1beta/files/abc"), 500, "INTERNAL")
        error(c.post("/_emulator/faults", json={"kind": "nonsense"}), 400, "INVALID_ARGUMENT")
        f = upload(c, png(2, 2))
        c.post("/_emulator/advance", json={"seconds": 49 * 3600})
        error(c.get(f"/v1beta/files/{fid(f)}"), 403, "PERMISSION_DENIED")
        stats = c.get("/_emulator/stats").json()
    assert stats["uploads_started"] == 1 and stats["live_files"] == 0
    assert stats["requests"]["get"] == 2


def test_unknown_route_is_json_404(emu: Emulator) -> None:
    r = httpx.get(f"{emu.base_url}/v2/nothing", headers={"x-goog-api-key": KEY})
    error(r, 404, "NOT_FOUND")


# -- probes, parsing, command line ---------------------------------------
@pytest.mark.parametrize(
    "mime,head",
    [
        ("image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8X"),
        ("image/heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"),
        ("audio/mp3", b"ID3\x04"),
        ("audio/mp3", b"\xff\xfb\x90\x00"),
        ("audio/aiff", b"FORM\x00\x00\x00\x00AIFF"),
        ("audio/aac", b"\xff\xf1\x50\x80"),
        ("audio/ogg", b"OggS\x00"),
        ("audio/flac", b"fLaC\x00"),
        ("video/mov", b"\x00\x00\x00\x08wide"),
        ("video/mpeg", b"\x00\x00\x01\xba"),
        ("video/avi", b"RIFF\x00\x00\x00\x00AVI LIST"),
        ("video/x-flv", b"FLV\x01"),
        ("video/webm", b"\x1a\x45\xdf\xa3"),
        ("video/wmv", b"\x30\x26\xb2\x75\x8e\x66"),
    ],
)
def test_sniff_magic(mime: str, head: bytes) -> None:
    assert sniff(mime, head)
    assert not sniff(mime, b"\x00" * 16)


def test_probes() -> None:
    assert probe("image/jpeg", jpeg(320, 200), b"", 0).width == 320
    vp8x = (
        b"RIFF\x00\x00\x00\x00WEBPVP8X"
        + bytes(8)
        + (99).to_bytes(3, "little")
        + (49).to_bytes(3, "little")
    )
    p = probe("image/webp", vp8x, b"", len(vp8x))
    assert (p.width, p.height) == (100, 50)
    w = wav(1.5)
    assert probe("audio/wav", w, w, len(w)).duration == pytest.approx(1.5)
    assert probe("video/mp4", b"\x00" * 8, b"", 8).duration is None


def test_durations_and_fault_specs() -> None:
    assert [parse_duration(s) for s in ("500ms", "2s", "10m", "48h", "1.5")] == [
        0.5,
        2.0,
        600.0,
        172800.0,
        1.5,
    ]
    f = parse_fault_spec("503:match=chunk:times=2")
    assert (f.kind, f.status, f.match, f.times) == ("status", 503, "chunk", 2)
    assert parse_fault_spec("429:retry_delay=1s").retry_delay == "1s"
    assert parse_fault_spec("cut:after_bytes=1000").match == "chunk"
    assert parse_fault_spec("lost_finalize").match == "finalize"
    assert parse_fault_spec("slow:delay=2").delay == 2.0
    q = parse_fault_spec("429:quota=per_day+per_minute:retry_delay=3s")
    assert (q.status, q.quotas, q.retry_delay) == (429, ["per_day", "per_minute"], "3s")
    b = parse_fault_spec("blocked:reason=PROHIBITED_CONTENT:stage=candidate")
    assert (b.reason, b.stage, b.match) == ("PROHIBITED_CONTENT", "candidate", "generate")
    for bad in ("429:quota=per_year", "blocked:stage=reply"):
        with pytest.raises(ValueError):
            parse_fault_spec(bad)
    with pytest.raises(ValueError):
        parse_fault_spec("boom")


def test_add_arguments() -> None:
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    a = p.parse_args(
        [
            "--port",
            "0",
            "--ttl",
            "10m",
            "--fault",
            "503:match=chunk",
            "--fault",
            "lost_finalize",
            "--processing-delay",
            "500ms",
        ]
    )
    assert a.port == 0 and a.ttl == 600.0 and a.processing_delay == 0.5
    assert a.video_processing_delay == 0.5  # video PROCESSING first by default (wire/11)
    assert [f.kind for f in a.fault] == ["status", "lost_finalize"]
    assert p.parse_args([]).port == 8765


def test_command_line_prints_url_and_stops_on_sigterm() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mediasync.emulator", "--port", "0", "--fault", "503:match=list"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("mediasync emulator listening on http://127.0.0.1:")
        assert line.rstrip().endswith("(api versions v1beta, v1)")
        base = line.split()[4]
        assert httpx.get(f"{base}/v1beta/files?key=k").status_code == 503
        assert httpx.get(f"{base}/v1beta/files?key=k").json() == {}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
