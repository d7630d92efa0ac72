"""[daemon] http, http_token and [notify] (issue 19): one clear line per mistake."""

from __future__ import annotations

import pytest

from mediasync.config import ConfigError, http_token, parse_config
from mediasync.config.observe import TOKEN_CREDENTIAL, Listen, parse_listen


def cfg(**tables):
    return parse_config({"folders": [{"path": "/m"}], **tables})


@pytest.mark.parametrize("text, listen, loopback", [
    ("127.0.0.1:8650", Listen("127.0.0.1", 8650), True),
    ("localhost:8650", Listen("localhost", 8650), True),
    ("[::1]:8650", Listen("::1", 8650), True),
    ("127.0.0.2:0", Listen("127.0.0.2", 0), True),
    ("0.0.0.0:8650", Listen("0.0.0.0", 8650), False),
    (":8650", Listen("", 8650), False),
    ("[::]:8650", Listen("::", 8650), False),
    ("nas.local:8650", Listen("nas.local", 8650), False),
    ("192.168.1.5:80", Listen("192.168.1.5", 80), False),
])
def test_addresses(text, listen, loopback):
    got = parse_listen(text, "daemon.http", None, None)
    assert got == listen and got.loopback is loopback


def test_a_unix_socket_is_local(tmp_path):
    got = cfg(daemon={"http": "unix:/run/mediasync/http.sock"}).daemon.http
    assert got.path is not None and str(got.path) == "/run/mediasync/http.sock" and got.loopback
    assert str(got) == "unix:/run/mediasync/http.sock"


@pytest.mark.parametrize("bad, says", [
    ("8650", "is not an address"),
    ("127.0.0.1:99999", "port 99999 is not between 0 and 65535"),
    ("[1::2::3]:80", "is not an IPv6 address"),
])
def test_bad_addresses_name_the_key(bad, says):
    with pytest.raises(ConfigError) as ei:
        cfg(daemon={"http": bad})
    assert str(ei.value).startswith("daemon.http: ") and says in str(ei.value)


def test_off_by_default_and_the_token_is_never_shown():
    c = cfg()
    assert c.daemon.http is None and c.notify.urls == ()
    c = cfg(daemon={"http": "0.0.0.0:1", "http_token": "s3cret"},
            notify={"urls": ["json://localhost/hook?token=hidden"]})
    assert "s3cret" not in repr(c) and "hidden" not in repr(c)


def test_beyond_loopback_a_token_is_required(tmp_path):
    c = cfg(daemon={"http": "0.0.0.0:8650"})
    with pytest.raises(ConfigError) as ei:
        http_token(c.daemon.http, c.daemon.http_token, {})
    assert str(ei.value).startswith("daemon.http_token: required: daemon.http = "
                                    "\"0.0.0.0:8650\" listens beyond loopback")
    assert "\n" not in str(ei.value)
    assert http_token(c.daemon.http, "t0k", {}) == "t0k"
    (tmp_path / TOKEN_CREDENTIAL).write_text("from-systemd\n")
    assert http_token(c.daemon.http, None, {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == \
        "from-systemd"
    loop = cfg(daemon={"http": "127.0.0.1:8650"})
    assert http_token(loop.daemon.http, None, {}) is None  # loopback: no token needed


def test_notify_urls_are_checked_by_apprise_without_echoing_them():
    with pytest.raises(ConfigError) as ei:
        cfg(notify={"urls": ["json://localhost:8080/x", "nosuch://user:pw@host"]})
    msg = str(ei.value)
    assert msg.startswith("notify.urls[1]: nosuch://… is not a notification URL")
    assert "pw" not in msg
    with pytest.raises(ConfigError, match=r"^notify.urls\[0\]: the value is not a URL"):
        cfg(notify={"urls": ["ntfy-topic"]})


def test_notify_keys():
    c = cfg(notify={"urls": ["ntfy://my-topic", "mailto://u:p@example.com"],
                    "on": ["file_failed", "daily_summary"], "unavailable_after": "2h",
                    "summary_at": "7:30", "gather": "0s"})
    n = c.notify
    assert n.on == {"file_failed", "daily_summary"} and n.unavailable_after == 7200
    assert n.summary_at == (7, 30) and n.gather == 0
    with pytest.raises(ConfigError, match=r"^notify.on\[0\]: 'file_fail' is not one of .*"
                                          r"did you mean 'file_failed'\?"):
        cfg(notify={"on": ["file_fail"]})
    with pytest.raises(ConfigError, match=r"^notify.summary_at: '25:00' is not a time"):
        cfg(notify={"summary_at": "25:00"})
    with pytest.raises(ConfigError, match=r"^notify.nope: unknown key"):
        cfg(notify={"nope": 1})
