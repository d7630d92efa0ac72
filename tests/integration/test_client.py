"""GeminiClient against the emulator over real loopback HTTP (no HTTP mocks)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediasync.gemini import (
    ApiError,
    Budgets,
    File,
    GeminiClient,
    Generation,
    RetryPolicy,
    TransportError,
    UploadSession,
    UploadSessionLost,
)
from mediasync.gemini.models import parse_time
from mediasync.gemini.pacing import FILES
from mediasync.gemini.resumable_upload import chunk_size, granularity_of
from tests.helpers import VClock

try:
    from mediasync.emulator import Emulator, EmulatorConfig, Fault
except ImportError:  # the emulator lands separately; the pure tests still run
    Emulator = EmulatorConfig = Fault = None  # type: ignore[assignment,misc]

KEY = "AIzaTEST-secret-key-0123456789"
G = 256 * 1024  # small granularity keeps multi-chunk uploads cheap
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class Sleeps:
    """Injected sleep: records the delays, waits for nothing."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def start_emulator(**kw: Any) -> Any:
    if Emulator is None:
        pytest.skip("mediasync.emulator is not available")
    return Emulator(EmulatorConfig(port=0, granularity=G, **kw)).start()


@pytest.fixture
def emu() -> Iterator[Any]:
    e = start_emulator()
    try:
        yield e
    finally:
        e.stop()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_client(emu: Any, sleeps: Sleeps, **kw: Any) -> GeminiClient:
    kw.setdefault("retry", RetryPolicy(max_attempts=4, sleep=sleeps, random=lambda: 0.5))
    kw.setdefault("chunk_size", G)
    return GeminiClient(kw.pop("key", KEY), emu.base_url, **kw)


def media(tmp_path: Path, size: int, name: str = "clip.mp4") -> Path:
    path = tmp_path / name
    body = (MP4_HEAD + os.urandom(max(0, size - len(MP4_HEAD))))[:size]
    path.write_bytes(body)
    return path


def b64sha(path: Path) -> str:
    # The live form (wire/11): base64 of the lowercase hex digest string.
    return base64.b64encode(hashlib.sha256(path.read_bytes()).hexdigest().encode()).decode()


class Recorder:
    """Sees every request the client really sends (an httpx event hook)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []  # (upload command or path, key sent)

    async def __call__(self, request: httpx.Request) -> None:
        what = request.headers.get("x-goog-upload-command") or request.url.path
        self.seen.append((what, "x-goog-api-key" in request.headers))

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(event_hooks={"request": [self]})

    def commands(self) -> list[str]:
        return [what for what, _ in self.seen]


def remote_count(emu: Any) -> int:
    return len(emu.list_files())


# -- upload -------------------------------------------------------------------


def test_one_chunk_upload_parses_the_file(emu: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    path = media(tmp_path, 100_000)
    seen: list[tuple[UploadSession, int]] = []

    async def go() -> File:
        async with make_client(emu, sleeps) as c:
            return await c.upload(
                path, "video/mp4", "clip one", on_progress=lambda s, o: seen.append((s, o))
            )

    f = run(go())
    assert f.name.startswith("files/") and f.size_bytes == 100_000
    assert f.mime_type == "video/mp4" and f.display_name == "clip one"
    assert f.sha256_hash == b64sha(path)
    assert f.expiration_time is not None and f.expiration_time > datetime.now(UTC)
    assert f.uri and f.state in ("PROCESSING", "ACTIVE")
    assert [o for _, o in seen] == [0, 100_000]
    assert seen[0][0].url.startswith(emu.base_url) and seen[0][0].granularity == G


def test_multi_chunk_upload_progress_per_chunk(emu: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    size = 3 * G + 1000
    path = media(tmp_path, size)
    offsets: list[int] = []
    rec = Recorder()

    async def progress(session: UploadSession, offset: int) -> None:  # async callbacks work too
        offsets.append(offset)

    async def go() -> File:
        async with make_client(emu, sleeps, http=rec.http()) as c:
            return await c.upload(path, "video/mp4", on_progress=progress)

    f = run(go())
    assert offsets == [0, G, 2 * G, 3 * G, size]
    assert f.size_bytes == size and f.sha256_hash == b64sha(path)
    assert rec.commands() == ["start"] + ["upload"] * 3 + ["upload, finalize"]
    assert emu.stats()["uploads_started"] == 1 and emu.stats()["uploads_finalized"] == 1


def test_relative_upload_url_is_resolved_against_base_url(sleeps: Sleeps, tmp_path: Path) -> None:
    emu = start_emulator(relative_upload_url=True)
    path = media(tmp_path, 2 * G + 10)
    sessions: list[UploadSession] = []
    base = emu.base_url
    try:

        async def go() -> File:
            async with make_client(emu, sleeps) as c:
                return await c.upload(
                    path, "video/mp4", on_progress=lambda s, o: sessions.append(s)
                )

        f = run(go())
    finally:
        emu.stop()
    assert f.size_bytes == 2 * G + 10 and f.sha256_hash == b64sha(path)
    # Absolute, so it can be persisted and resumed by a later run as is.
    assert sessions[0].url.startswith(base + "/upload/v1beta/files?upload_id=")


def test_chunk_size_is_largest_granularity_multiple_under_target(
    emu: Any, sleeps: Sleeps, tmp_path: Path
) -> None:
    size = 5 * G
    path = media(tmp_path, size)
    offsets: list[int] = []

    async def go() -> File:
        async with make_client(emu, sleeps, chunk_size=2 * G + 100) as c:
            return await c.upload(path, "video/mp4", on_progress=lambda s, o: offsets.append(o))

    assert run(go()).size_bytes == size
    assert offsets == [0, 2 * G, 4 * G, size]
    assert chunk_size(G, 100) == G and chunk_size(G, 3 * G - 1) == 2 * G
    assert granularity_of({}) == 8 * 1024 * 1024


def test_zero_byte_file_is_one_finalize(emu: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    offsets: list[int] = []
    rec = Recorder()

    async def go() -> File:
        async with make_client(emu, sleeps, http=rec.http()) as c:
            return await c.upload(path, "image/png", on_progress=lambda s, o: offsets.append(o))

    f = run(go())
    assert f.size_bytes == 0 and offsets == [0, 0]
    assert rec.commands() == ["start", "upload, finalize"]


def test_resume_after_cut_connection(emu: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    size = 4 * G + 123
    path = media(tmp_path, size)
    rec = Recorder()
    emu.add_fault(Fault(kind="cut", after_bytes=G // 2, match="chunk", times=2))

    async def go() -> File:
        async with make_client(emu, sleeps, http=rec.http()) as c:
            return await c.upload(path, "video/mp4")

    f = run(go())
    assert f.size_bytes == size and f.sha256_hash == b64sha(path)
    assert remote_count(emu) == 1 and rec.commands().count("query") == 2


def test_a_chunk_kept_in_part_is_sent_again_from_the_servers_count(
    emu: Any, sleeps: Sleeps, tmp_path: Path
) -> None:
    """A resumable server may keep less of a chunk than it was sent and say so in
    X-Goog-Upload-Size-Received on a 200 "active": the next chunk starts there."""
    size = 5 * G + 77
    path = media(tmp_path, size)
    offsets: list[int] = []
    emu.add_fault(Fault(kind="short", after_bytes=G, match="chunk"))

    async def go() -> File:
        async with make_client(emu, sleeps, chunk_size=2 * G) as c:
            return await c.upload(path, "video/mp4", on_progress=lambda s, o: offsets.append(o))

    f = run(go())
    assert f.size_bytes == size and f.sha256_hash == b64sha(path)
    assert offsets == [0, G, 3 * G, 5 * G, size]  # resent from G, not from 2 G
    assert emu.stats()["faults_fired"] == 1


def test_a_chunk_kept_in_part_without_a_count_is_resynced_by_a_query(
    emu: Any, sleeps: Sleeps, tmp_path: Path
) -> None:
    """The hardest reading: the server keeps part of a chunk and says nothing; the next
    chunk is refused (400 "Invalid upload offset"), which is about the session, not the
    file: a query finds the server's count and the upload goes on from there."""
    size = 5 * G + 77
    path = media(tmp_path, size)
    offsets: list[int] = []
    emu.add_fault(Fault(kind="short", after_bytes=G, match="chunk", counted=False))

    async def go() -> File:
        async with make_client(emu, sleeps, chunk_size=2 * G) as c:
            return await c.upload(path, "video/mp4", on_progress=lambda s, o: offsets.append(o))

    f = run(go())
    assert f.size_bytes == size and f.sha256_hash == b64sha(path)
    assert offsets == [0, 2 * G, G, 3 * G, 5 * G, size]
    assert remote_count(emu) == 1


@pytest.mark.parametrize("query_after", ["refusal", "empty_final"])
def test_a_refused_finalize_stays_the_files_verdict(
    sleeps: Sleeps, tmp_path: Path, query_after: str
) -> None:
    """400 on the finalize (unsupported MIME type) is about the file: raised as it is,
    not taken for a session out of step, whether a query then repeats the refusal or
    reads "final" with no file."""
    path = media(tmp_path, 3 * G)
    emu = start_emulator(empty_final_after_refusal=query_after == "empty_final")

    async def go() -> File:
        async with make_client(emu, sleeps, chunk_size=2 * G) as c:
            return await c.upload(path, "application/x-nonsense")

    try:
        with pytest.raises(ApiError) as e:
            run(go())
    finally:
        emu.stop()
    assert e.value.code == 400 and not isinstance(e.value, UploadSessionLost)
    assert "MIME" in e.value.message


def test_resume_in_fresh_client_from_persisted_session(
    emu: Any, sleeps: Sleeps, tmp_path: Path
) -> None:
    size = 4 * G + 7
    path = media(tmp_path, size)
    persisted: dict[str, Any] = {}

    class Killed(Exception):
        pass

    def persist(session: UploadSession, offset: int) -> None:
        persisted.update(url=session.url, size=session.size, granularity=session.granularity)
        persisted["offset"] = offset
        if offset >= 2 * G:
            raise Killed  # stands in for kill -9 after the row was written

    async def first() -> None:
        async with make_client(emu, sleeps) as c:
            await c.upload(path, "video/mp4", on_progress=persist)

    with pytest.raises(Killed):
        run(first())
    assert persisted["offset"] == 2 * G

    offsets: list[int] = []

    async def second() -> File:
        session = UploadSession(persisted["url"], persisted["size"], persisted["granularity"])
        async with make_client(emu, Sleeps()) as c:
            return await c.upload(
                path, "video/mp4", session=session, on_progress=lambda s, o: offsets.append(o)
            )

    f = run(second())
    assert offsets[0] == 2 * G and offsets[-1] == size
    assert f.sha256_hash == b64sha(path) and remote_count(emu) == 1


def test_lost_finalize_is_adopted_via_query(emu: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    path = media(tmp_path, 2 * G + 5)
    emu.add_fault(Fault(kind="lost_finalize", match="finalize"))

    url = ""

    def remember(session: UploadSession, offset: int) -> None:
        nonlocal url
        url = session.url

    async def go_with_url() -> File:
        async with make_client(emu, sleeps) as c:
            f = await c.upload(path, "video/mp4", on_progress=remember)
            # resuming a finished session returns the same file, no second copy
            again = await c.upload(path, "video/mp4", session=UploadSession(url, 2 * G + 5, G))
            assert again.name == f.name
            return f

    f = run(go_with_url())
    assert f.sha256_hash == b64sha(path)
    assert remote_count(emu) == 1 and emu.stats()["uploads_finalized"] == 1
    assert len(sleeps.delays) == 1  # one backoff before the query


def test_unknown_upload_session_is_lost(emu: Any, sleeps: Sleeps) -> None:
    async def go() -> None:
        async with make_client(emu, sleeps) as c:
            s = await c.start_upload(size=10, mime_type="video/mp4")
            bogus = s.url.replace("upload_id=", "upload_id=zz")
            await c.query_upload(bogus)

    with pytest.raises(UploadSessionLost):
        run(go())


# -- errors and retries -------------------------------------------------------


def test_429_honours_retry_delay_and_every_attempt_is_paced(
    emu: Any, sleeps: Sleeps, tmp_path: Path
) -> None:
    clock = VClock(1_750_000_000.0)
    budgets = Budgets(clock=clock, sleep=clock.sleep)
    emu.add_fault(Fault(kind="status", status=429, retry_delay="1.5s", match="list"))

    async def go() -> list[File]:
        async with make_client(emu, sleeps, budgets=budgets) as c:
            return await c.list_files()

    assert run(go()) == []
    assert clock.slept == [1.5]  # the class held for the server's delay, then retried
    assert len(budgets.state(FILES).requests.items) == 2  # every API attempt is paced


def test_chunks_and_queries_are_not_paced(emu: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    budgets = Budgets()
    path = media(tmp_path, 3 * G)
    emu.add_fault(Fault(kind="cut", after_bytes=10, match="chunk"))

    async def go() -> None:
        async with make_client(emu, sleeps, budgets=budgets) as c:
            await c.upload(path, "video/mp4")

    run(go())
    assert len(budgets.state(FILES).requests.items) == 1  # the start only


def test_503_is_retried_with_jittered_backoff(emu: Any, sleeps: Sleeps) -> None:
    emu.add_fault(Fault(kind="status", status=503, match="list", times=2))

    async def go() -> list[File]:
        async with make_client(emu, sleeps) as c:
            return await c.list_files()

    assert run(go()) == []
    assert sleeps.delays == [0.25, 0.5]  # base 0.5 · 2^(n-1) · random 0.5


def test_503_gives_up_after_max_attempts(emu: Any, sleeps: Sleeps) -> None:
    emu.add_fault(Fault(kind="status", status=503, match="list", times=None))

    async def go() -> None:
        async with make_client(emu, sleeps) as c:
            await c.list_files()

    with pytest.raises(ApiError) as info:
        run(go())
    assert info.value.code == 503 and info.value.retryable
    assert len(sleeps.delays) == 3  # 4 attempts


def test_400_is_not_retried(emu: Any, sleeps: Sleeps) -> None:
    emu.add_fault(Fault(kind="status", status=400, match="get", message="bad thing"))

    async def go() -> None:
        async with make_client(emu, sleeps) as c:
            await c.get_file("files/abc")

    with pytest.raises(ApiError) as info:
        run(go())
    assert info.value.code == 400 and not info.value.retryable
    assert sleeps.delays == []


def test_chunk_503_queries_then_continues(emu: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    path = media(tmp_path, 3 * G + 1)
    emu.add_fault(Fault(kind="status", status=503, match="chunk", times=2))

    async def go() -> File:
        async with make_client(emu, sleeps) as c:
            return await c.upload(path, "video/mp4")

    assert run(go()).sha256_hash == b64sha(path)
    assert len(sleeps.delays) == 2 and remote_count(emu) == 1


def test_file_gone_after_delete(emu: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    path = media(tmp_path, 1000)

    async def go() -> None:
        async with make_client(emu, sleeps) as c:
            f = await c.upload(path, "video/mp4")
            assert (await c.get_file(f.name)).name == f.name
            await c.delete_file(f.name)
            with pytest.raises(ApiError) as info:
                await c.get_file(f.name)
            assert info.value.code == 403 and info.value.file_gone
            assert not info.value.retryable and not info.value.key_invalid

    run(go())
    assert sleeps.delays == []


def test_key_invalid(sleeps: Sleeps) -> None:
    e = start_emulator(key="right")
    try:

        async def go() -> None:
            async with make_client(e, sleeps, key="wrong") as c:
                await c.list_files()

        with pytest.raises(ApiError) as info:
            run(go())
        assert info.value.key_invalid and not info.value.retryable
        assert sleeps.delays == []

        async def ok() -> list[File]:
            async with make_client(e, sleeps, key="right") as c:
                return await c.list_files()

        assert run(ok()) == []
    finally:
        e.stop()


def test_connection_refused_surfaces_as_transport_error(sleeps: Sleeps) -> None:
    async def go() -> None:
        retry = RetryPolicy(max_attempts=3, sleep=sleeps, random=lambda: 1.0)
        async with GeminiClient(KEY, "http://127.0.0.1:9", retry=retry) as c:
            await c.get_file("files/x")

    with pytest.raises(TransportError) as info:
        run(go())
    assert info.value.code == 0 and info.value.status == "UNAVAILABLE"
    assert sleeps.delays == [0.5, 1.0]


# -- files.list / generate ----------------------------------------------------


def test_list_every_page_and_empty(emu: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    async def go() -> None:
        async with make_client(emu, sleeps) as c:
            assert await c.list_files() == []
            names = set()
            for i in range(5):
                f = await c.upload(media(tmp_path, 500 + i, f"c{i}.mp4"), "video/mp4")
                names.add(f.name)
            listed = await c.list_files(page_size=2)
            assert {f.name for f in listed} == names and len(listed) == 5

    run(go())


def test_generate_text_and_usage(emu: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    path = media(tmp_path, 5000)

    async def go() -> Generation:
        async with make_client(emu, sleeps) as c:
            f = await c.upload(path, "video/mp4")
            assert f.uri and f.state == "PROCESSING"  # video is not ACTIVE at once (wire/11)
            emu.clock.advance(60)
            return await c.generate(
                "gemini-2.5-flash", file_uri=f.uri, mime_type="video/mp4", prompt="Describe."
            )

    g = run(go())
    assert g.text and g.finish_reason == "STOP" and g.block_reason is None and not g.blocked
    assert g.usage.total_tokens > 0 and g.usage.prompt_tokens > 0


def test_blocked_generation_is_a_result(emu: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    path = media(tmp_path, 5000)
    emu.add_fault(Fault(kind="blocked"))

    async def go() -> Generation:
        async with make_client(emu, sleeps) as c:
            f = await c.upload(path, "video/mp4")
            emu.clock.advance(60)  # past video PROCESSING
            return await c.generate(
                "models/gemini-2.5-flash", file_uri=f.uri or "", mime_type="video/mp4", prompt="x"
            )

    g = run(go())
    assert g.blocked and not g.text
    assert g.block_reason is not None or g.finish_reason not in (None, "STOP")


# -- secrecy ------------------------------------------------------------------


def test_key_never_in_repr_errors_or_logs(
    emu: Any, sleeps: Sleeps, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = media(tmp_path, 2 * G)
    emu.add_fault(Fault(kind="status", status=503, match="get"))
    emu.add_fault(Fault(kind="cut", after_bytes=100, match="chunk"))
    texts: list[str] = []

    async def go() -> None:
        async with make_client(emu, sleeps) as c:
            texts.append(repr(c))
            texts.append(repr(vars(c)))
            f = await c.upload(path, "video/mp4")
            await c.get_file(f.name)
            await c.delete_file(f.name)
            try:
                await c.get_file(f.name)
            except ApiError as e:
                texts.extend([str(e), repr(e), repr(e.args)])

    run(go())
    bad = GeminiClient(KEY, "http://127.0.0.1:9", retry=RetryPolicy(max_attempts=1))
    try:
        run(bad.get_file("files/x"))
    except ApiError as e:
        texts.extend([str(e), repr(e)])
    texts.extend(r.getMessage() for r in caplog.records)
    assert len(texts) > 6
    assert not [t for t in texts if KEY in t]


# -- pure pieces --------------------------------------------------------------


def test_file_parsing_tolerates_nanoseconds_and_missing_fields() -> None:
    f = File.from_json(
        {
            "name": "files/abc",
            "sizeBytes": "123",
            "createTime": "2026-01-02T03:04:05.123456789Z",
            "expirationTime": "2026-01-04T03:04:05Z",
            "videoMetadata": {"videoDuration": "3.5s"},
            "error": {"code": 3, "message": "nope"},
        }
    )
    assert f.size_bytes == 123 and f.video_duration == 3.5 and f.error_message == "nope"
    assert f.create_time == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert f.update_time is None and f.state == "STATE_UNSPECIFIED"
    assert parse_time("2026-01-02T03:04:05.5+02:00") is not None
    assert File.from_json({}).name == ""


def test_error_parsing() -> None:
    body = (
        b'{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED",'
        b' "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations":'
        b' [{"quotaId": "GenerateRequestsPerMinute"}]}, {"@type":'
        b' "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "28s"}]}}'
    )
    e = ApiError.from_body(429, body)
    assert e.retry_delay == 28.0 and e.quota_exceeded and e.retryable and not e.storage_full
    key = ApiError.from_body(
        400,
        b'{"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT",'
        b' "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",'
        b' "reason": "API_KEY_INVALID"}]}}',
    )
    assert key.reason == "API_KEY_INVALID" and key.key_invalid and not key.retryable
    empty = ApiError.from_body(503, b"")
    assert empty.status == "UNAVAILABLE" and empty.retryable and empty.retry_delay is None


def test_key_only_on_api_requests(emu: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    path = media(tmp_path, 2 * G + 1)
    emu.add_fault(Fault(kind="cut", after_bytes=100, match="chunk"))  # forces a query too
    rec = Recorder()

    async def go() -> None:
        async with make_client(emu, sleeps, http=rec.http()) as c:
            f = await c.upload(path, "video/mp4")
            await c.get_file(f.name)

    run(go())
    data = [key for what, key in rec.seen if what in ("upload", "upload, finalize", "query")]
    api = [key for what, key in rec.seen if what not in ("upload", "upload, finalize", "query")]
    assert "query" in rec.commands() and len(data) >= 4 and not any(data)
    assert len(api) == 2 and all(api)  # start and files.get


def test_timeout_is_retried(emu: Any, sleeps: Sleeps) -> None:
    emu.add_fault(Fault(kind="slow", delay=1.0, match="list"))

    async def go() -> list[File]:
        async with make_client(emu, sleeps, timeout=0.3) as c:
            return await c.list_files()

    assert run(go()) == []
    assert len(sleeps.delays) == 1


def test_forgotten_session_raises_upload_session_lost(
    emu: Any, sleeps: Sleeps, tmp_path: Path
) -> None:
    path = media(tmp_path, 1000)

    async def go() -> None:
        async with make_client(emu, sleeps) as c:
            s = await c.start_upload(size=1000, mime_type="video/mp4")
            gone = UploadSession(s.url.replace("upload_id=", "upload_id=zz"), 1000, G)
            await c.upload(path, "video/mp4", session=gone)

    with pytest.raises(UploadSessionLost) as info:
        run(go())
    assert isinstance(info.value, ApiError) and not info.value.retryable
