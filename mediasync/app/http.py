"""The local HTTP endpoint (issue 19): ``/`` the status page, ``/metrics`` for
Prometheus, ``/healthz`` for Docker, systemd helpers and uptime checkers.

aiohttp's server on the daemon's own asyncio loop: no thread per request, and
nothing a handler does touches the store. Every answer comes from the snapshot
the observer keeps (app/observe.py), so a busy store never holds a request; a
request that finds it stale asks for a fresh one and is answered from the last.
Answers are cached per snapshot and the two heavy paths are rate-limited, so a
flood of requests costs the sync little.

A token, when set, is asked of everything but /healthz: ``Authorization: Bearer
TOKEN`` (Prometheus's ``authorization``), or HTTP Basic with the token as the
password (what a browser prompts for).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import stat
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry

from mediasync.config import Listen, token_matches
from mediasync.report import metrics, page
from mediasync.report.snapshot import Snapshot


class Source(Protocol):
    """What the endpoint reads (app/observe.py's Observer): the endpoint never holds
    its owner, only this."""

    problem: str | None
    registry: CollectorRegistry

    def current(self, *, fresh: bool = False) -> Snapshot: ...

    def health(self) -> dict[str, Any]: ...


log = logging.getLogger("mediasync")

# Page and metrics renders a second, sustained, and at once; beyond: 429 with Retry-After.
# A search of 100,000 files not done takes ~10 ms on the loop (bench/observe.py), so a
# flood of new searches costs the sync at most ~10 % of the loop; cached pages are free.
RATE = 10.0
BURST = 20.0
CACHED = 64  # rendered pages kept per snapshot (searches, pages)
OPEN = ("/healthz",)  # answered without the token: says nothing but whether all is well

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Bucket:
    """A token bucket: ``take()`` is False once the rate is exceeded."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.level, self.at = burst, clock()

    def take(self) -> bool:
        now = self.clock()
        self.level = min(self.burst, self.level + (now - self.at) * self.rate)
        self.at = now
        if self.level < 1:
            return False
        self.level -= 1
        return True


def _authorized(request: web.Request, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return token_matches(token, value.strip())
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return token_matches(token, decoded.partition(":")[2])
    return False


class Endpoint:
    def __init__(self, observer: Source, listen: Listen, token: str | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.observer = observer
        self.listen = listen
        self.token = token
        self.clock = clock
        self._bucket = _Bucket(RATE, BURST, time.monotonic)
        self._pages: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._runner: web.AppRunner | None = None
        self.address: str | None = None  # where it listens, once started (port 0 resolved)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def start(self) -> str:
        """Listen; raises OSError (the port in use, the socket path not writable)."""
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        try:
            if self.listen.path is not None:
                _clear_stale_socket(str(self.listen.path))
                site: web.BaseSite = web.UnixSite(self._runner, str(self.listen.path))
            else:
                site = web.TCPSite(self._runner, self.listen.host or None, self.listen.port,
                                   reuse_address=True)
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.address = _bound(site, self.listen)
        return self.address

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- middleware and handlers ----------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.token and request.path not in OPEN and not _authorized(request, self.token):
            return web.Response(status=401, text="a token is required (Authorization: Bearer "
                                "TOKEN, or HTTP Basic with the token as the password)\n",
                                headers={"WWW-Authenticate": 'Basic realm="mediasync", '
                                         'charset="UTF-8"'})
        return await handler(request)

    def _limited(self) -> web.Response | None:
        if self._bucket.take():
            return None
        return web.Response(status=429, text="too many requests; try again in a second\n",
                            headers={"Retry-After": "1"})

    async def _index(self, request: web.Request) -> web.StreamResponse:
        snap = self.observer.current(fresh=True)
        q = request.query.get("q", "")[:200]
        state = request.query.get("state", "")[:20]
        try:
            number = max(1, int(request.query.get("page", "1")))
        except ValueError:
            number = 1
        key = (id(snap), snap.taken_at, q, state, number)
        body = self._pages.get(key)
        if body is None:
            refused = self._limited()
            if refused is not None:
                return refused
            body = page.render(snap, self.clock(), query=q, state=state, page=number,
                               note=self.observer.problem).encode()
            self._pages[key] = body
            while len(self._pages) > CACHED:
                self._pages.popitem(last=False)
        return web.Response(body=body, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        self.observer.current(fresh=True)
        refused = self._limited()
        if refused is not None:
            return refused
        body = metrics.exposition(self.observer.registry)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        doc = self.observer.health()
        return web.Response(status=200 if doc["healthy"] else 503,
                            text=json.dumps(doc, indent=2) + "\n",
                            content_type="application/json",
                            headers={"Cache-Control": "no-store"})


def _clear_stale_socket(path: str) -> None:
    """A socket file left by a daemon that was killed: binding would fail on it."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def _bound(site: web.BaseSite, listen: Listen) -> str:
    if listen.path is not None:
        return f"unix:{listen.path}"
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    if sockets:
        host, port = sockets[0].getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(listen)
