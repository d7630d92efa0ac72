"""Pieces of the resumable upload protocol that need no HTTP: sizes and bodies."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping

DEFAULT_GRANULARITY = 8 * 1024 * 1024  # when the server names none (the SDK's chunk size)
READ_BLOCK = 1024 * 1024  # bytes per disk read / socket write: memory stays flat


class FileChanged(OSError):
    """The local file's size differs from the upload session's: start over."""


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
