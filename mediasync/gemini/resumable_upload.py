"""The resumable upload protocol: start a session, query it, send chunks, resume.

Owns the upload session's wire exchanges, its chunk sizes and streamed bodies, and
its recovery rules (trust the server's count, adopt a file whose finalize answer
was lost, never upload twice). Pacing, retries, the API key and error decoding are
the shared Transport's (transport.py); chunk and query requests carry no key,
because the upload URL authorises them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import httpx

from .errors import ApiError, FileChanged, ProtocolError, TransportError, UploadSessionLost
from .models import File, UploadSession, UploadStatus, file_name, json_object
from .transport import Transport

ProgressCallback = Callable[[UploadSession, int], Awaitable[None] | None]

log = logging.getLogger("mediasync")

# Chunks refused in a row, each answered by resuming from the server's count, before
# the session is given up (started over); a count that keeps moving is progress.
MAX_RESYNCS = 5
DEFAULT_GRANULARITY = 8 * 1024 * 1024  # when the server names none (the SDK's chunk size)
READ_BLOCK = 1024 * 1024  # bytes per disk read / socket write: memory stays flat


# -- sizes and bodies (no HTTP) -------------------------------------------------
def granularity_of(headers: Mapping[str, str]) -> int:
    """X-Goog-Upload-Chunk-Granularity, or 8 MiB when absent or nonsense."""
    try:
        value = int(headers.get("x-goog-upload-chunk-granularity", ""))
    except ValueError:
        return DEFAULT_GRANULARITY
    return value if value > 0 else DEFAULT_GRANULARITY


def chunk_size(granularity: int, target: int) -> int:
    """The largest multiple of ``granularity`` ≤ ``target``, but at least one granularity."""
    return max(granularity, target // granularity * granularity)


async def file_body(fd: int, offset: int, length: int) -> AsyncIterator[bytes]:
    """Stream ``length`` bytes of ``fd`` from ``offset`` in READ_BLOCK pieces.

    ``os.pread`` runs in a worker thread so the event loop never waits on the
    disk, and being positional it needs no shared file offset between retries.
    The next block is read while the current one is being sent (two blocks in
    memory at most): without that overlap the socket idles during every read.
    """
    end = offset + length

    def read(at: int) -> asyncio.Future[bytes]:
        return asyncio.ensure_future(asyncio.to_thread(os.pread, fd, min(READ_BLOCK, end - at), at))

    pending = read(offset)
    try:
        while True:
            data = await pending
            if not data:
                raise FileChanged(f"file shrank during upload (at byte {offset})")
            offset += len(data)
            if offset >= end:
                yield data
                return
            pending = read(offset)
            yield data
    finally:
        pending.cancel()  # the body was abandoned (broken connection): drop the read-ahead


# -- the exchanges ----------------------------------------------------------------


async def _notify(callback: ProgressCallback | None, session: UploadSession, offset: int) -> None:
    if callback is not None:
        result = callback(session, offset)
        if inspect.isawaitable(result):
            await result


def _adopt(status: UploadStatus) -> File:
    # A finalize whose answer was lost: the file exists; never upload twice.
    if status.file is None:
        raise ProtocolError("upload is final but the server returned no file")
    return status.file


def _body(fd: int, offset: int, length: int) -> bytes | AsyncIterator[bytes]:
    return b"" if length == 0 else file_body(fd, offset, length)


def _received(response: httpx.Response) -> str:
    return response.headers.get("x-goog-upload-size-received", "")


class ResumableUpload:
    """Resumable uploads over ``transport``, in chunks of about ``chunk_size`` bytes
    (a multiple of the session's granularity); ``GeminiClient`` delegates here."""

    def __init__(self, transport: Transport, chunk_size: int) -> None:
        self.transport = transport
        self.chunk_size = chunk_size

    async def start(
        self, size: int, mime_type: str, display_name: str | None, name: str | None
    ) -> UploadSession:
        """Open a session for ``size`` bytes; the answer names its URL and granularity."""
        meta: dict[str, str] = {}
        if display_name is not None:
            meta["displayName"] = display_name
        if name is not None:
            meta["name"] = file_name(name)
        headers = {
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(size),
            "X-Goog-Upload-Header-Content-Type": mime_type,
        }
        url = self.transport.upload_url("files")
        body = {"file": meta}
        response = await self.transport.call("upload.start", "POST", url, headers=headers,
                                             json=body)
        upload_url = response.headers.get("x-goog-upload-url")
        if not upload_url:
            raise ProtocolError("upload start answered without X-Goog-Upload-URL")
        # The live service sends an absolute URL; a relative one (a proxy, another
        # implementation) is a plausible reading, resolved as HTTP resolves any
        # reference: against the start request's URL, i.e. base_url for "/upload/…".
        upload_url = str(response.url.join(upload_url))
        state = response.headers.get("x-goog-upload-status", "active")
        if state != "active":
            raise ProtocolError(f"upload start answered X-Goog-Upload-Status {state!r}")
        granularity = granularity_of(response.headers)
        return UploadSession(url=upload_url, size=size, granularity=granularity)

    async def query(self, url: str) -> UploadStatus:
        """The session's state; UploadSessionLost on any non-retryable answer."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.transport.send(
                    "POST", url, api=False, headers={"X-Goog-Upload-Command": "query"}
                )
                if response.status_code == 200:
                    return self._status(response)
                error = self.transport.error(response)
            except TransportError as e:
                error = e
            if not error.retryable:
                raise UploadSessionLost(error.code, error.status, error.message, error.details)
            await self.transport.backoff("upload.query", error, attempt)

    def _status(self, response: httpx.Response) -> UploadStatus:
        state = response.headers.get("x-goog-upload-status", "")
        if state == "final":
            file = json_object(response.content).get("file")
            received = _received(response)
            return UploadStatus(
                "final",
                int(received) if received.isdigit() else 0,
                File.from_json(file) if isinstance(file, dict) else None,
            )
        if state == "active":
            received = _received(response)
            if not received.isdigit():
                raise ProtocolError("query answered without X-Goog-Upload-Size-Received")
            return UploadStatus("active", int(received))
        # e.g. "cancelled": the session is over without a file.
        raise UploadSessionLost(404, "NOT_FOUND", f"upload session is {state or 'unknown'}")

    async def upload(
        self, path: str | os.PathLike[str], mime_type: str, display_name: str | None,
        session: UploadSession | None, on_progress: ProgressCallback | None, name: str | None,
    ) -> File:
        """Start (or resume ``session``), then stream the rest; see GeminiClient.upload."""
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if session is None:
                session = await self.start(size, mime_type, display_name, name)
                offset = 0
            else:
                status = await self.query(session.url)
                if status.state == "final":
                    return _adopt(status)
                offset = status.received
            if size != session.size:
                raise FileChanged(f"file is {size} bytes, upload session expects {session.size}")
            await _notify(on_progress, session, offset)
            return await self._send_chunks(fd, session, offset, on_progress)
        finally:
            os.close(fd)

    async def _send_chunks(
        self, fd: int, session: UploadSession, offset: int, on_progress: ProgressCallback | None
    ) -> File:
        step = chunk_size(session.granularity, self.chunk_size)
        failures = 0
        while True:
            end = min(offset + step, session.size)
            last = end == session.size
            command = "upload, finalize" if last else "upload"
            answer = await self._send_chunk(fd, session.url, offset, end, command)
            if not isinstance(answer, ApiError):
                state = answer.headers.get("x-goog-upload-status")
                if state == "final":
                    return await self._finished(answer, session, on_progress)
                if state == "active" and not last:
                    # Trust the server's count when it gives one (it may keep less).
                    received = _received(answer)
                    offset = int(received) if received.isdigit() else end
                    failures = 0
                    await _notify(on_progress, session, offset)
                    continue
                raise ProtocolError(f"{command!r} answered X-Goog-Upload-Status {state!r}")
            if not answer.retryable:
                where = await self._out_of_step(session, offset, answer, last)
                if isinstance(where, File):
                    await _notify(on_progress, session, session.size)
                    return where
                offset = where
                failures += 1
                if failures > MAX_RESYNCS:
                    raise UploadSessionLost(answer.code, answer.status, answer.message,
                                            answer.details)
                await _notify(on_progress, session, offset)
                continue
            failures += 1
            await self.transport.backoff(f"upload.{command}", answer, failures)
            # The connection broke or the server failed: ask what it kept.
            status = await self.query(session.url)
            if status.state == "final":
                file = _adopt(status)
                await _notify(on_progress, session, session.size)
                return file
            if status.received != offset:
                failures = 0 if status.received > offset else failures
                offset = status.received
                await _notify(on_progress, session, offset)

    async def _out_of_step(
        self, session: UploadSession, offset: int, refused: ApiError, last: bool
    ) -> int | File:
        """A chunk refused for good (400): if the server holds another count than we
        sent from (it kept less than it said, e.g. "Invalid upload offset"), resume
        there. Otherwise a refused finalize is about the file (400 unsupported MIME
        type) and a refused middle chunk is about the session: start over."""
        try:
            status = await self.query(session.url)
        except UploadSessionLost:
            if last:
                raise refused from None  # the finalize's verdict closed the session
            raise
        if status.state == "final":
            if last and status.file is None:
                raise refused  # closed by the finalize's own verdict, with no file
            return _adopt(status)
        if status.received != offset:
            log.info("upload out of step: the server holds %d bytes, not %d; resuming there",
                     status.received, offset)
            return status.received
        if last:
            raise refused
        raise UploadSessionLost(refused.code, refused.status, refused.message, refused.details)

    async def _send_chunk(
        self, fd: int, url: str, offset: int, end: int, command: str
    ) -> httpx.Response | ApiError:
        """One chunk exchange: the 200 answer, or the error it met (not raised)."""
        try:
            response = await self.transport.send(
                "POST",
                url,
                api=False,
                headers={
                    "X-Goog-Upload-Command": command,
                    "X-Goog-Upload-Offset": str(offset),
                    "Content-Length": str(end - offset),
                },
                content=_body(fd, offset, end - offset),
            )
        except TransportError as e:
            return e
        return response if response.status_code == 200 else self.transport.error(response)

    async def _finished(
        self, response: httpx.Response, session: UploadSession, on_progress: ProgressCallback | None
    ) -> File:
        file = json_object(response.content).get("file")
        if not isinstance(file, dict):
            raise ProtocolError("final upload answer has no file")
        await _notify(on_progress, session, session.size)
        return File.from_json(file)
