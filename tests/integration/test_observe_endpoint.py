"""The status endpoint in-process over real HTTP (issue 19): the page escapes user data,
/metrics reads back with prometheus_client's parser, /healthz says 200 or 503, the
token guards all but /healthz, a busy store and a flood are answered from the snapshot."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mediasync.app import observe
from mediasync.app.observe import Observer
from mediasync.config import parse_config
from mediasync.report import snapshot
from mediasync.store import Store
from tests.helpers import fill_store

EVIL = "<script>alert('x')</script>\".jpg"


def setup(tmp_path: Path, **daemon) -> tuple[object, Store]:
    config = parse_config({"daemon": {"http": "127.0.0.1:0", **daemon},
                           "folders": [{"path": str(tmp_path / "Photos")},
                                       {"path": str(tmp_path / "Empty")}]})
    store = Store(tmp_path / "state.db")
    fill_store(store, config, 120, failed=2, waiting=3, names=[EVIL])
    return config, store


async def started(config, store, env=None) -> Observer:
    obs = Observer(config, store, env or {})
    await obs.start()
    await obs.refresh()
    return obs


def base(obs: Observer) -> str:
    assert obs.endpoint is not None and obs.endpoint.address
    return f"http://{obs.endpoint.address}"


def test_page_metrics_and_health(tmp_path):
    config, store = setup(tmp_path)

    async def go():
        obs = await started(config, store)
        try:
            async with httpx.AsyncClient(base_url=base(obs)) as c:
                page = await c.get("/")
                metrics = await c.get("/metrics")
                health = await c.get("/healthz")
                found = await c.get("/", params={"q": "503", "state": "waiting"})
                paged = await c.get("/", params={"page": "2"})
                obs.halt_reasons.append(lambda: "the API key was refused (API_KEY_INVALID)")
                halted = await c.get("/healthz")
            return page, metrics, health, found, paged, halted
        finally:
            await obs.stop()

    page, metrics, health, found, paged, halted = asyncio.run(go())
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)" in html
    assert "&quot;.jpg" in html and "empty file (0 bytes)" in html
    assert str(tmp_path / "Photos") in html and str(tmp_path / "Empty") in html
    assert "<meta http-equiv=refresh" in html and "name=viewport" in html
    assert "<script" not in html.replace("&lt;script", "")  # no script of ours either
    assert "files 1–3 of 3" in found.text and "503 UNAVAILABLE" in found.text
    assert "Nothing here." in paged.text  # 5 not done: one page

    fams = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    files = {(s.labels["folder"], s.labels["state"]): s.value
             for s in fams["mediasync_files"].samples}
    photos = str(tmp_path / "Photos")
    assert files[(photos, "synced")] == 115 and files[(photos, "failed")] == 2
    assert files[(photos, "waiting")] == 3 and files[(str(tmp_path / "Empty"), "synced")] == 0
    assert fams["mediasync_build_info"].samples[0].labels["version"]
    assert fams["mediasync_uploads"].type == "counter"  # exposed as mediasync_uploads_total
    assert "mediasync_uploads_total 0.0" in metrics.text
    assert fams["mediasync_remote_store_bytes"].samples[0].value == 115 * 1000
    assert fams["mediasync_state_database_bytes"].samples[0].value > 0
    assert all(f.name.startswith("mediasync_") for f in fams.values())

    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["loop"]["alive"] is True
    assert halted.status_code == 503
    assert halted.json()["halted"] == "the API key was refused (API_KEY_INVALID)"


def test_a_token_guards_everything_but_healthz(tmp_path):
    config, store = setup(tmp_path, http_token="s3cret-token")

    async def go():
        obs = await started(config, store)
        try:
            async with httpx.AsyncClient(base_url=base(obs)) as c:
                basic = base64.b64encode(b"me:s3cret-token").decode()
                return [
                    (await c.get("/")).status_code,
                    (await c.get("/metrics")).status_code,
                    (await c.get("/", headers={"Authorization": "Bearer wrong"})).status_code,
                    (await c.get("/healthz")).status_code,
                    (await c.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}
                                 )).status_code,
                    (await c.get("/", headers={"Authorization": f"Basic {basic}"})).status_code,
                ], (await c.get("/")).headers.get("www-authenticate")
        finally:
            await obs.stop()

    codes, challenge = asyncio.run(go())
    assert codes == [401, 401, 401, 200, 200, 200]
    assert challenge.startswith("Basic realm=")


def test_a_busy_store_is_answered_from_the_last_snapshot(tmp_path, monkeypatch):
    config, store = setup(tmp_path)
    release = threading.Event()
    real = snapshot.build
    reading = threading.Event()

    def slow(*a, **kw):
        reading.set()
        release.wait(10)  # a store that takes its time (100,000 files, a long write)
        return real(*a, **kw)

    async def go():
        obs = await started(config, store)
        try:
            monkeypatch.setattr(snapshot, "build", slow)
            before = obs.current()
            fill_store(store, config, 130)  # the store changed: the next request asks
            async with httpx.AsyncClient(base_url=base(obs), timeout=2) as c:
                first = await c.get("/metrics")
                await asyncio.to_thread(reading.wait, 5)
                during = [await c.get(p) for p in ("/", "/metrics", "/healthz")]
                same = obs.current() is before
                release.set()
                for _ in range(100):
                    if obs.current() is not before:
                        break
                    await asyncio.sleep(0.05)
                after = await c.get("/metrics")
            return first, during, same, after
        finally:
            release.set()
            await obs.stop()

    first, during, same, after = asyncio.run(go())
    assert first.status_code == 200 and same
    assert [r.status_code for r in during] == [200, 200, 200]  # none waited for the store
    assert synced(first.text) == 115 and synced(after.text) == 130  # then the new reading


def synced(text: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(text) if f.name == "mediasync_files"
               for s in f.samples if s.labels["state"] == "synced")


def test_a_flood_never_reads_the_store_and_is_told_to_slow_down(tmp_path, monkeypatch):
    config, store = setup(tmp_path)
    builds = []
    real = snapshot.build
    monkeypatch.setattr(snapshot, "build", lambda *a, **kw: builds.append(1) or real(*a, **kw))

    async def go():
        obs = await started(config, store)
        try:
            async with httpx.AsyncClient(base_url=base(obs)) as c:
                rs = await asyncio.gather(*(c.get("/", params={"q": f"img{i}"})
                                            for i in range(150)))
            return [r.status_code for r in rs]
        finally:
            await obs.stop()

    codes = asyncio.run(go())
    assert len(builds) == 1  # the one refresh() of started(); requests never read
    assert codes.count(200) >= 20 and codes.count(429) > 0
    assert set(codes) <= {200, 429}


def test_a_port_in_use_leaves_the_daemon_running_and_says_so(tmp_path, caplog):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    config, store = setup(tmp_path)
    config = parse_config({"daemon": {"http": f"127.0.0.1:{port}"},
                           "folders": [{"path": str(tmp_path / "Photos")}]})

    async def go():
        obs = Observer(config, store, {})
        await obs.start()
        try:
            return obs.problem, obs.endpoint
        finally:
            await obs.stop()

    try:
        problem, endpoint = asyncio.run(go())
    finally:
        taken.close()
    assert endpoint is None
    assert problem == f"status page off: cannot listen on 127.0.0.1:{port}: address already in use"
    lines = [r.getMessage() for r in caplog.records if "cannot listen" in r.getMessage()]
    assert len(lines) == 1 and "syncing goes on without the status page" in lines[0]


def test_a_unix_socket(tmp_path):
    sock = tmp_path / "run" / "http.sock"
    sock.parent.mkdir()
    sock.write_text("")  # not a socket: left alone, so binding fails plainly
    sock.unlink()
    config = parse_config({"daemon": {"http": f"unix:{sock}"},
                           "folders": [{"path": str(tmp_path / "Photos")}]})
    store = Store(tmp_path / "state.db")

    async def go():
        obs = await started(config, store)
        try:
            transport = httpx.AsyncHTTPTransport(uds=str(sock))
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
                return (await c.get("/healthz")).status_code
        finally:
            await obs.stop()

    assert asyncio.run(go()) == 200


def test_pace_keeps_readings_to_a_small_share():
    assert observe.pace(0.001) == 1.0
    assert observe.pace(2.0) == 40.0
    assert observe.pace(30.0) == observe.MAX_PACE


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0"])
def test_no_token_beyond_loopback_is_a_config_error(tmp_path, listen):
    from mediasync.config import ConfigError

    config = parse_config({"daemon": {"http": listen}, "folders": [{"path": str(tmp_path)}]})
    with pytest.raises(ConfigError, match="^daemon.http_token: required"):
        Observer(config, Store(tmp_path / "state.db"), {})


def test_a_reload_moves_the_endpoint_and_turns_it_off(tmp_path):
    config, store = setup(tmp_path)
    moved = parse_config({"daemon": {"http": "127.0.0.1:0", "http_token": "t"},
                          "folders": [{"path": str(tmp_path / "Photos")}]})
    off = parse_config({"folders": [{"path": str(tmp_path / "Photos")}]})

    async def go():
        obs = await started(config, store)
        try:
            async with httpx.AsyncClient() as c:
                first = base(obs)
                before = (await c.get(f"{first}/")).status_code
                await obs.reconfigure(moved)  # a token now: the endpoint starts again with it
                second = base(obs)
                guarded = (await c.get(f"{second}/")).status_code
                await obs.reconfigure(off)
                return before, guarded, obs.endpoint, obs.enabled
        finally:
            await obs.stop()

    before, guarded, endpoint, enabled = asyncio.run(go())
    assert (before, guarded) == (200, 401)
    assert endpoint is None and not enabled
