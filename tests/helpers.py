"""Helpers shared by the tests: the real CLI in a subprocess against an in-process emulator,
clocks the tests move, and sample rows and files."""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

KEY = "e2e-test-key-0123456789"

# A 16×16 JPEG as ffmpeg writes it (`-f lavfi -i color=red:s=16x16 -frames:v 1`), no EXIF.
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAgEBAQEBAUFBQUFBQYGBgYGBgYGBgYGBg"
    "YHBwcICAgHBwcGBgcHCAgICAkJCQgICAgJCQoKCgwMCwsODg4RERT/xABMAAEBAAAAAAAAAAAAAAAAAAAABgEBAQAA"
    "AAAAAAAAAAAAAAAABgcQAQAAAAAAAAAAAAAAAAAAAAARAQAAAAAAAAAAAAAAAAAAAAD/wAARCAAQABADASIAAhEAAx"
    "EA/9oADAMBAAIRAxEAPwCLAFF/f//Z"
)


def write_config(
    root: Path,
    base_url: str,
    *,
    folder: Path | None = None,
    daemon: dict[str, Any] | None = None,
    prompts: str = "",
    folder_extra: str = "",
) -> Path:
    folder = folder or root / "inbox"
    folder.mkdir(parents=True, exist_ok=True)
    d = {
        "state_dir": str(root / "state"),
        "settle": "0s",
        "refresh_every": "1s",
        "rescan_every": "10m",
        "requests_per_minute": 6000,
        **(daemon or {}),
    }
    lines = ["[api]", f'base_url = "{base_url}"', "", "[daemon]"]
    for k, v in d.items():
        lines.append(f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {v}")
    lines += ["", "[[folders]]", f'path = "{folder}"', folder_extra, prompts]
    cfg = root / "config.toml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def env(**extra: str) -> dict[str, str]:
    drop = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "NOTIFY_SOCKET", "JOURNAL_STREAM",
            "WATCHDOG_USEC", "CREDENTIALS_DIRECTORY", "MEDIASYNC_CONFIG", "MEDIASYNC_STATE_DIR")
    e = {k: v for k, v in os.environ.items() if k not in drop}
    e.update({"GEMINI_API_KEY": KEY, "PYTHONUNBUFFERED": "1"}, **extra)
    return e


def cli(
    cfg: Path, *args: str, timeout: float = 120, **env_extra: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mediasync", "-c", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(**env_extra),
    )


class Running:
    """`mediasync run` in the background, with its log captured to a file."""

    def __init__(self, cfg: Path, **env_extra: str) -> None:
        self.log_path = cfg.parent / "daemon.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mediasync", "-c", str(cfg), "--log-level", "debug", "run"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env(**env_extra),
        )
        wait_for(lambda: "watching" in self.log(), what="daemon start", proc=self.proc)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=20)
        finally:
            self._log.close()
        return code


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 30, what: str = "condition",
    proc: subprocess.Popen | None = None,
) -> Any:
    """Poll a condition the system under test will make true (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def db_rows(cfg: Path, sql: str) -> list[tuple]:
    """Rows of the daemon's state database; [] until it exists with its tables.

    A process that was just started may have created the file but not yet its
    schema: callers poll with wait_for, so "not yet" must read as no rows.
    """
    db = cfg.parent / "state" / "state.db"
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql).fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e) or "no such column" in str(e):
            return []
        raise
    finally:
        con.close()


def kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


class Clock:
    """Wall clock with an offset the test moves forward (time injected, never slept)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def advance(clock: Clock, emu: Any, seconds: float) -> None:
    """Move the test's clock and the emulator's (an ``Emulator``) forward together."""
    clock.offset += seconds
    emu.clock.advance(seconds)


class VClock:
    """A virtual clock whose sleep advances it (pacing tested without waiting)."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def engine_setup(tmp_path: Path, base_url: str) -> tuple[Any, Any]:
    """(config, store) for an in-process Engine over ``tmp_path/inbox``."""
    from mediasync.config import parse_config
    from mediasync.store import Store

    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    config = parse_config(
        {
            "api": {"base_url": base_url},
            "daemon": {"state_dir": str(tmp_path / "state"), "settle": "0s",
                       "requests_per_minute": 6000},
            "folders": [{"path": str(inbox)}],
        }
    )
    return config, Store(tmp_path / "state" / "state.db")


def quota_err(kind: str, limit: int | None, model: str = "gemini-2.5-flash") -> Any:
    """A live-shaped 429 (an ``ApiError``) naming one quota: ``kind`` rpm, rpd or tpm,
    ``limit`` as quotaValue (None: absent, as often live), RetryInfo 7 s."""
    from mediasync.gemini import ApiError, quota

    qid = {"rpm": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
           "rpd": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
           "tpm": "GenerateContentInputTokensPerModelPerMinute-FreeTier"}[kind]
    v: dict[str, Any] = {"quotaId": qid, "quotaDimensions": {"model": model}}
    if limit is not None:
        v["quotaValue"] = str(limit)
    return ApiError(429, "RESOURCE_EXHAUSTED", "quota", [
        {"@type": quota.QUOTA_FAILURE, "violations": [v]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}])


# -- store rows for the pure decisions (plan, states) ---------------------------
def content_row(**kw: Any) -> Any:
    """A ``store.ContentRow`` of an image with nothing recorded yet: no copy, no
    upload under way, no error. ``kw`` sets the fields a case is about."""
    from mediasync.store import ContentRow

    base = dict(sha256="ab" * 32, size=10, mime="image/png", kind="image", remote_name=None,
                uri=None, expires_at=None, next_url=None, next_offset=None,
                next_granularity=None, next_name=None, next_uri=None, next_expires_at=None,
                error=None, retry_at=None, attempts=0, uploads=0, updated_at=0.0)
    return ContentRow(**{**base, **kw})


def output_row(want: Any, **kw: Any) -> Any:
    """A ``store.OutputRow``: the sidecar ``want`` (a ``rows.Desired``) asks for, written
    from content "s" and current. ``kw`` sets the fields a case is about."""
    from mediasync.store import OutputRow

    base = dict(path=want.sidecar.removesuffix(want.suffix), suffix=want.suffix, sha256="s",
                prompt_hash=want.prompt_hash, model=want.model, sidecar=want.sidecar,
                written_hash="w", pending_hash=None, outcome="written", message=None,
                prompt_tokens=1, output_tokens=1, retry_at=None, attempts=0, at=0.0)
    return OutputRow(**{**base, **kw})


def fill_store(store: Any, config: Any, count: int, *, failed: int = 0, waiting: int = 0,
               names: list[str] | None = None, now: float | None = None) -> None:
    """``count`` image paths of the config's first folder written straight into a store:
    the first ``failed`` refused for good (empty files), the next ``waiting`` waiting to
    retry an upload, the rest synced (a live copy, the caption written). For the status
    page's tests and bench/observe.py (100,000 files without a sync)."""
    import hashlib

    from mediasync.rules import desired
    from mediasync.store import OutputRow, PathRow

    folder = config.folders[0]
    now = time.time() if now is None else now
    with store.transaction():
        for i in range(count):
            name = names[i] if names and i < len(names) else f"img{i:06d}.jpg"
            path = str(folder.path / name)
            sha = hashlib.sha256(path.encode()).hexdigest()
            problem = "empty file (0 bytes): nothing to upload" if i < failed else None
            store.put_path(PathRow(path, str(folder.path), 1000, 1, i + 1, sha, "image",
                                   "image/jpeg", problem, None, now))
            store.ensure_content(sha, 1000, "image/jpeg", "image", now)
            if i < failed:
                continue
            if i < failed + waiting:
                store.copy_failed(sha, now, "upload failed, will retry: 503 UNAVAILABLE",
                                  now + 600, 1)
                continue
            store.promoted(sha, now, f"files/{sha[:12]}", f"http://x/files/{sha[:12]}",
                           now + 40 * 3600)
            for want in desired.desired(folder, path, "image", config.api.model):
                store.put_output(OutputRow(
                    path=path, suffix=want.suffix, sha256=sha, prompt_hash=want.prompt_hash,
                    model=want.model, sidecar=want.sidecar, written_hash="w", pending_hash=None,
                    outcome="written", message=None, prompt_tokens=300, output_tokens=20,
                    retry_at=None, attempts=0, at=now, thoughts_tokens=50))


# -- real HTTP with a look at it (never a mock of our HTTP layer) -------------------
class AfterGenerate(httpx.AsyncBaseTransport):
    """Real HTTP; ``hook`` runs each time a generateContent answer has arrived."""

    def __init__(self, hook: Callable[[], None]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.hook = hook

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith(":generateContent"):
            await response.aread()
            self.hook()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class Recording(httpx.AsyncBaseTransport):
    """Real HTTP; keeps the generateContent bodies sent."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.bodies: list[dict] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(":generateContent"):
            self.bodies.append(json.loads(request.content))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def damage_db(db: Path) -> None:
    """Bytes 100-4096 of a database zeroed, as the issue measured: the schema page is
    gone, and SQLite says the file is damaged (SQLITE_CORRUPT)."""
    data = bytearray(db.read_bytes())
    data[100:4096] = bytes(3996)
    db.write_bytes(bytes(data))
