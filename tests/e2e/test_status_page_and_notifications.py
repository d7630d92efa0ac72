"""End-to-end (issue 19): the real `mediasync run` with [daemon] http and [notify]: the
page in a real headless browser (skipped without one), /metrics against `status --json`,
notifications to a local json:// receiver, once across a restart; `check --notify`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mediasync.emulator import Emulator, EmulatorConfig, Fault
from mediasync.media.samples import png_bytes
from tests.helpers import Running, cli, wait_for, write_config

EVIL = "<script>alert('x')<.script> \"q\".png"


class Receiver:
    """A json:// notification target: Apprise POSTs {"title", "message", …} here."""

    def __init__(self) -> None:
        got = self.got = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                got.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server.fileno() != -1:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def emu() -> Iterator[Emulator]:
    e = Emulator(EmulatorConfig(port=0, processing_delay=0.05)).start()
    yield e
    e.stop()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def endpoint(d: Running) -> str:
    m = wait_for(lambda: re.search(r"/healthz on (http://127\.0\.0\.1:\d+)/", d.log()),
                 what="the endpoint's address", proc=d.proc)
    return m.group(1)


def browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def headless(url: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    exe = browser()
    if exe is None:
        pytest.skip("no headless browser (apt-get install chromium)")
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp / 'browser'}", *extra, url],
        capture_output=True, text=True, timeout=120)


def test_metrics_and_notifications_with_the_real_daemon(tmp_path, emu, receiver):
    cfg = write_config(tmp_path, emu.base_url, daemon={"settle": "100ms",
                                                       "http": "127.0.0.1:0"})
    with open(cfg, "a") as f:
        f.write(f'\n[notify]\nurls = ["{receiver.url}"]\ngather = "1s"\n')
    inbox = tmp_path / "inbox"
    (inbox / "good.png").write_bytes(png_bytes(seed=71))
    (inbox / EVIL).write_bytes(b"")  # refused for good: an empty file
    # A storm of transient errors before the answer: retried, and told to nobody.
    emu.add_fault(Fault(kind="status", status=503, match="generate", times=3))
    d = Running(cfg)
    try:
        base = endpoint(d)
        wait_for(lambda: (inbox / "good.png.caption.md").exists(), what="caption", proc=d.proc)
        wait_for(lambda: receiver.got, what="a notification", proc=d.proc, timeout=60)
        [note] = receiver.got
        assert note["title"] == "mediasync: a file failed for good"
        assert EVIL in note["message"] and "empty file (0 bytes)" in note["message"]

        # /metrics, read back by prometheus_client, says what `status --json` says.
        def metrics() -> dict[str, float]:
            text = get(f"{base}/metrics")[1]
            return {s.labels["state"]: s.value for f in text_string_to_metric_families(text)
                    if f.name == "mediasync_files" for s in f.samples}
        doc = json.loads(cli(cfg, "status", "--json").stdout)
        want = {}
        for file in doc["files"]:
            want[file["state"]] = want.get(file["state"], 0) + 1
        wait_for(lambda: {k: v for k, v in metrics().items() if v} == want,
                 what="metrics as status --json", proc=d.proc)
        assert want == {"synced": 1, "failed": 1}
        code, health = get(f"{base}/healthz")
        assert code == 200 and json.loads(health)["last_api_success"]
    finally:
        assert d.stop() == 0, d.log()[-3000:]

    # A restart remembers what it told: the old failure is not sent again, a new one is.
    (inbox / "empty2.png").write_bytes(b"")
    d = Running(cfg)
    try:
        wait_for(lambda: len(receiver.got) == 2, what="the new failure told", proc=d.proc,
                 timeout=60)
    finally:
        assert d.stop() == 0, d.log()[-3000:]
    assert "empty2.png" in receiver.got[1]["message"]
    assert EVIL not in receiver.got[1]["message"], receiver.got[1]


def test_the_page_in_a_real_browser(tmp_path, emu):
    """What a person looks for: folders, counts, the failed file with its reason; the
    file name shown as text, never run."""
    if browser() is None:
        pytest.skip("no headless browser (apt-get install chromium)")
    cfg = write_config(tmp_path, emu.base_url, daemon={"settle": "100ms",
                                                       "http": "127.0.0.1:0"})
    inbox = tmp_path / "inbox"
    (inbox / "good.png").write_bytes(png_bytes(seed=72))
    (inbox / EVIL).write_bytes(b"")
    d = Running(cfg)
    try:
        base = endpoint(d)
        wait_for(lambda: '"synced"} 1.0' in get(f"{base}/metrics")[1]
                 and '"failed"} 1.0' in get(f"{base}/metrics")[1], what="a reading", proc=d.proc)
        run = headless(f"{base}/", tmp_path, "--dump-dom")
        assert run.returncode == 0, run.stderr[-2000:]
        dom = run.stdout
        assert str(inbox) in dom and "Folders" in dom
        assert re.search(r"<td class=\"n synced\">1</td>", dom), dom[:3000]
        assert re.search(r"<td class=\"n failed\">1</td>", dom), dom[:3000]
        assert "&lt;script&gt;alert('x')&lt;.script&gt; \"q\".png" in dom
        assert "empty file (0 bytes): nothing to upload" in dom
        assert "<script>alert" not in dom
        shot = tmp_path / "page.png"
        run = headless(f"{base}/", tmp_path, f"--screenshot={shot}", "--window-size=420,900")
        assert run.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        assert d.stop() == 0, d.log()[-3000:]


def test_check_notify_sends_a_test_message(tmp_path, emu, receiver):
    cfg = write_config(tmp_path, emu.base_url)
    with open(cfg, "a") as f:
        f.write(f'\n[notify]\nurls = ["{receiver.url}"]\n')
    r = cli(cfg, "check", "--notify")
    assert r.returncode == 0, r.stdout + r.stderr
    sent = r"^ok   notify.urls\[0\] json://127\.0\.0\.1:\d+/hook: test notification sent$"
    assert re.search(sent, r.stdout, re.M), r.stdout
    [note] = receiver.got
    assert note["title"] == "mediasync: test notification"
    # nobody listening there: one FAIL line, exit 1
    port = receiver.server.server_address[1]
    receiver.stop()
    cfg.write_text(cfg.read_text().replace(f"127.0.0.1:{port}/hook", f"127.0.0.1:{port}/x"))
    r = cli(cfg, "check", "--notify")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL notify.urls[0]" in r.stdout and "could not be sent" in r.stdout


def test_no_token_beyond_loopback_stops_the_daemon_with_one_line(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url, daemon={"http": "0.0.0.0:8650"})
    r = cli(cfg, "run", timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].endswith(
        "daemon.http_token: required: daemon.http = \"0.0.0.0:8650\" listens beyond loopback; "
        "set http_token (or the systemd credential mediasync-http-token), or listen on 127.0.0.1")


def test_check_names_the_endpoint_and_its_token(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url, daemon={"http": "127.0.0.1:8650"})
    r = cli(cfg, "check")
    assert r.returncode == 0, r.stdout
    assert "ok   http: status page, /metrics and /healthz on 127.0.0.1:8650; no token" in r.stdout
    cfg.write_text(cfg.read_text().replace("127.0.0.1:8650", "0.0.0.0:8650"))
    r = cli(cfg, "check", "--notify")
    assert r.returncode == 2, r.stdout
    assert "FAIL http daemon.http_token: required" in r.stdout
    assert "FAIL notify: no [notify] urls in the config" in r.stdout
