import os
import socket
import uuid
from pathlib import Path

import pytest

from mediasync.app.sdnotify import Notifier


@pytest.fixture
def path_server(tmp_path: Path):
    sock_path = tmp_path / "notify.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(sock_path))
    srv.settimeout(2)
    yield str(sock_path), srv
    srv.close()


@pytest.fixture
def abstract_server():
    name = f"mediasync-test-{uuid.uuid4().hex}"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind("\0" + name)
    srv.settimeout(2)
    yield "@" + name, srv
    srv.close()


def test_path_socket_messages(path_server):
    addr, srv = path_server
    n = Notifier.from_env({"NOTIFY_SOCKET": addr})
    assert n.enabled
    assert n.watchdog_interval is None

    n.ready()
    assert srv.recv(4096) == b"READY=1\n"
    n.ready("watching 3 folders")
    assert srv.recv(4096) == b"READY=1\nSTATUS=watching 3 folders\n"
    n.status("uploading\nphoto.jpg")
    assert srv.recv(4096) == b"STATUS=uploading photo.jpg\n"
    n.watchdog()
    assert srv.recv(4096) == b"WATCHDOG=1\n"
    n.reloading(123456789)
    assert srv.recv(4096) == b"RELOADING=1\nMONOTONIC_USEC=123456789\n"
    n.stopping()
    assert srv.recv(4096) == b"STOPPING=1\n"
    n.close()


def test_abstract_socket(abstract_server):
    addr, srv = abstract_server
    n = Notifier.from_env({"NOTIFY_SOCKET": addr})
    assert n.enabled
    n.ready("ok")
    assert srv.recv(4096) == b"READY=1\nSTATUS=ok\n"
    n.close()


def test_disabled_is_noop():
    n = Notifier.from_env({})
    assert not n.enabled
    assert n.watchdog_interval is None
    n.ready("x")
    n.status("x")
    n.watchdog()
    n.reloading(1)
    n.stopping()


def test_watchdog_interval():
    env = {"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "60000000"}
    assert Notifier.from_env(env).watchdog_interval == 30.0
    env["WATCHDOG_PID"] = str(os.getpid())
    assert Notifier.from_env(env).watchdog_interval == 30.0
    env["WATCHDOG_PID"] = str(os.getpid() + 1)
    assert Notifier.from_env(env).watchdog_interval is None
    assert Notifier.from_env({"WATCHDOG_USEC": "bogus"}).watchdog_interval is None
    assert Notifier.from_env({"WATCHDOG_USEC": "0"}).watchdog_interval is None


def test_send_failure_never_raises_and_logs_once(tmp_path, caplog):
    n = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "missing.sock")})
    with caplog.at_level("DEBUG", logger="mediasync.app.sdnotify"):
        n.ready()
        n.watchdog()
        n.stopping()
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1


def test_unsupported_address_disabled():
    assert not Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled
