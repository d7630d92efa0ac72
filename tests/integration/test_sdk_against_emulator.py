"""The official google-genai SDK as a real client of the emulator (v1 and v1beta)."""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Iterator

import pytest

from mediasync.emulator import Emulator, EmulatorConfig
from mediasync.media.samples import png_bytes as png

genai = pytest.importorskip("google.genai")
from google.genai import errors, types  # noqa: E402

MIB = 1024 * 1024


def mp4(seconds: float, payload: int) -> bytes:
    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 8 + len(body)) + kind + body

    mvhd = box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, 600, int(seconds * 600)) + bytes(80))
    ftyp = box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
    return ftyp + box(b"mdat", bytes(payload)) + box(b"moov", mvhd)  # moov at the end


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(processing_delay=0.2, video_processing_delay=0.4)) as e:
        yield e


def sdk(emu: Emulator, ver: str):  # -> genai.Client
    return genai.Client(
        api_key="k", http_options=types.HttpOptions(base_url=emu.base_url, api_version=ver)
    )


def wait_active(client, name: str) -> types.File:  # noqa: ANN001
    deadline = time.monotonic() + 10
    while True:
        f = client.files.get(name=name)
        if f.state != types.FileState.PROCESSING or time.monotonic() > deadline:
            return f
        time.sleep(0.05)


@pytest.mark.parametrize("ver", ["v1", "v1beta"])
def test_sdk_round_trip(emu: Emulator, ver: str) -> None:
    client = sdk(emu, ver)
    before = emu.stats()["requests"].get("chunk", 0)

    small = client.files.upload(
        file=io.BytesIO(png(640, 480)), config={"mime_type": "image/png", "display_name": "small"}
    )
    assert small.display_name == "small" and small.size_bytes == len(png(640, 480))
    assert small.uri == f"{emu.base_url}/{ver}/files/{small.name.removeprefix('files/')}"

    # > 8 MiB: the SDK sends 8 MiB chunks, then a finalizing remainder.
    video = mp4(3.0, 17 * MIB)
    big = client.files.upload(file=io.BytesIO(video), config={"mime_type": "video/mp4"})
    assert big.size_bytes == len(video)
    assert emu.stats()["requests"]["chunk"] - before == 2  # 2 × 8 MiB + the final chunk

    small = wait_active(client, small.name)
    big = wait_active(client, big.name)
    assert small.state == types.FileState.ACTIVE and big.state == types.FileState.ACTIVE
    assert big.video_metadata == {"videoDuration": "3s"}

    r = client.models.generate_content(
        model="gemini-2.5-flash", contents=[small, "Caption this image in one sentence."]
    )
    assert r.text.startswith("[mediasync emulator] image/png, 640×480 px")
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert (
        r.usage_metadata.prompt_token_count == 258 + len("Caption this image in one sentence.") // 4
    )

    listed = [f.name for f in client.files.list(config={"page_size": 2})]
    assert small.name in listed and big.name in listed and len(listed) == len(set(listed))
    pager = client.files.list(config={"page_size": 2})
    assert len(pager.page) <= 2

    client.files.delete(name=small.name)
    with pytest.raises(errors.ClientError) as info:
        client.files.get(name=small.name)
    assert info.value.code == 403 and info.value.status == "PERMISSION_DENIED"
    client.files.delete(name=big.name)


def test_sdk_lists_across_pages(emu: Emulator) -> None:
    client = sdk(emu, "v1beta")
    names = [
        client.files.upload(file=io.BytesIO(png(2, 2)), config={"mime_type": "image/png"}).name
        for _ in range(5)
    ]
    pager = client.files.list(config={"page_size": 2})
    assert len(pager.page) == 2
    listed = [f.name for f in pager]  # the pager fetches the further pages
    assert [n for n in listed if n in names] == names
    for n in names:
        client.files.delete(name=n)


def test_sdk_sees_failed_precondition_and_bad_key() -> None:
    with Emulator(EmulatorConfig(key="right", processing_delay=60)) as e:
        good = genai.Client(api_key="right", http_options=types.HttpOptions(base_url=e.base_url))
        f = good.files.upload(file=io.BytesIO(png(2, 2)), config={"mime_type": "image/png"})
        assert f.state == types.FileState.PROCESSING
        with pytest.raises(errors.ClientError) as info:
            good.models.generate_content(model="gemini-2.5-flash", contents=[f, "hi"])
        assert info.value.code == 400 and info.value.status == "FAILED_PRECONDITION"
        bad = genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=e.base_url))
        with pytest.raises(errors.ClientError) as info:
            bad.files.get(name=f.name)
        assert info.value.code == 400 and "API key not valid" in info.value.message


# -- models and tiers (issue 16) ------------------------------------------------------
@pytest.mark.parametrize("ver", ["v1", "v1beta"])
def test_sdk_models_list_and_get(emu: Emulator, ver: str) -> None:
    client = sdk(emu, ver)
    pager = client.models.list(config={"page_size": 4})
    assert len(pager.page) == 4
    listed = [m.name for m in pager]  # further pages by nextPageToken (wire/37's form)
    assert len(listed) == len(set(listed)) == len(emu.models.models)
    assert "models/gemini-3.5-flash-lite" in listed
    got = client.models.get(model="gemini-3.5-flash-lite")
    assert got.name == "models/gemini-3.5-flash-lite" and got.display_name
    assert "generateContent" in got.supported_actions and got.thinking is True
    assert got.input_token_limit == 1_048_576


def test_sdk_sees_a_retired_model_as_404_everywhere() -> None:
    with Emulator(EmulatorConfig(retired_models=("gemini-2.5-flash",))) as e:
        client = sdk(e, "v1beta")
        assert "models/gemini-2.5-flash" not in [m.name for m in client.models.list()]
        for call in (lambda: client.models.get(model="gemini-2.5-flash"),
                     lambda: client.models.generate_content(model="gemini-2.5-flash",
                                                            contents="hi")):
            with pytest.raises(errors.ClientError) as info:
                call()
            assert info.value.code == 404 and info.value.status == "NOT_FOUND"
            assert info.value.message.startswith("models/gemini-2.5-flash is not found for API "
                                                 "version v1beta, or is not supported for ")


def test_sdk_service_tier_and_thinking_level(emu: Emulator) -> None:
    client = sdk(emu, "v1beta")
    r = client.models.generate_content(
        model="gemini-3.8-flash", contents="hi",
        config=types.GenerateContentConfig(
            service_tier="flex", thinking_config=types.ThinkingConfig(thinking_level="LOW")))
    # this SDK's usage type has no serviceTier field (it keeps the header)
    assert r.sdk_http_response.headers["x-gemini-service-tier"] == "flex"
    assert r.model_version == "gemini-3.8-flash" and r.usage_metadata.thoughts_token_count
    with pytest.raises(errors.ClientError) as info:  # both knobs at once
        client.models.generate_content(
            model="gemini-3.8-flash", contents="hi",
            config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(
                thinking_level="LOW", thinking_budget=0)))
    assert info.value.code == 400 and "mutually exclusive" in info.value.message
