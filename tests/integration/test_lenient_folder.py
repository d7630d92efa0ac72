"""The re-hash that decides whether an upload holds our bytes runs in the folder's own
threads: a folder known not to answer keeps the upload, it does not block a thread of
the shared pool (nor is it read behind the folder's back)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading

from mediasync.engine.dispatch import Engine
from mediasync.gemini import File, GeminiClient
from mediasync.local.folderio import FolderIO, FolderUnavailable
from mediasync.rules.rows import PathRow
from tests.helpers import engine_setup


def test_a_hung_folder_keeps_the_upload_without_reading_the_file(tmp_path) -> None:
    config, store = engine_setup(tmp_path, "http://127.0.0.1:9")
    inbox = str(config.folders[0].path)
    photo = tmp_path / "inbox" / "a.png"
    photo.write_bytes(b"new bytes")  # changed since it was hashed as "old"
    store.put_path(PathRow(path=str(photo), folder=inbox, size=9, mtime_ns=1, inode=1,
                           sha256="0" * 64, kind="image", mime="image/png", problem=None,
                           gone_at=None, updated_at=0.0))
    release = threading.Event()
    fs = FolderIO(timeout=0.05, gate=lambda folder: release.wait(10))
    other = base64.b64encode(hashlib.sha256(b"other").hexdigest().encode()).decode()
    file = File(name="files/x", sha256_hash=other)

    async def go() -> bool:
        engine = Engine(config, store, GeminiClient("k", "http://127.0.0.1:9"), fs=fs)
        try:
            await fs.call(inbox, len, "x")  # the folder stops answering
        except FolderUnavailable:
            pass
        assert fs.hung(inbox)
        holds = await engine.mirror.answers.hash_holds("0" * 64, str(photo), file)
        await engine.client.aclose()
        return holds

    try:
        assert asyncio.run(go()) is True
    finally:
        release.set()
        store.close()
