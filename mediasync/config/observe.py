"""The observability part of the config (issue 19): ``[daemon] http`` and ``http_token``
(the local status page, metrics and health check) and ``[notify]`` (Apprise).

Kept apart from the rest of the parser like ``[limits]``. Pure except
:func:`find_http_token` (reads a credential file) and the URL check, which asks
Apprise whether it can use a URL (without sending anything).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .values import (
    ConfigError,
    as_duration,
    as_path,
    as_str,
    as_str_list,
    as_table,
    check_keys,
)

# systemd LoadCredential= name of the endpoint's token (beside gemini-api-key).
TOKEN_CREDENTIAL = "mediasync-http-token"


@dataclass(frozen=True)
class Listen:
    """Where the endpoint listens: a TCP host and port, or a Unix socket path."""

    host: str | None = None
    port: int = 0
    path: Path | None = None  # a Unix socket; then host is None

    @property
    def loopback(self) -> bool:
        """Only this machine can connect (a Unix socket is guarded by its file mode)."""
        if self.path is not None:
            return True
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host or "").is_loopback
        except ValueError:
            return False  # a host name or "" (every interface): reachable from outside

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = self.host or "*"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d{1,5})$")


def parse_listen(value: Any, key: str, base: Path | None, home: Path | None) -> Listen:
    """``"127.0.0.1:8650"``, ``"[::1]:8650"``, ``"localhost:8650"``, ``":8650"`` (every
    interface) or a Unix socket: ``"unix:/run/mediasync/http.sock"`` or an absolute path."""
    text = as_str(value, key).strip()
    if text.startswith("unix:") or text.startswith("/") or text.startswith("~"):
        return Listen(path=as_path(text.removeprefix("unix:"), key, base, home))
    m = _HOST_PORT.match(text)
    if not m:
        raise ConfigError(f"{text!r} is not an address like \"127.0.0.1:8650\", "
                          "\"[::1]:8650\" or a Unix socket path", key=key)
    port = int(m["port"])
    if port > 65535:
        raise ConfigError(f"{text!r}: port {port} is not between 0 and 65535", key=key)
    host = m["v6"] if m["v6"] is not None else m["host"]
    if m["v6"] is not None:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"{text!r}: {host!r} is not an IPv6 address", key=key) from None
    return Listen(host=host, port=port)


def find_http_token(token: str | None, env: Mapping[str, str]) -> tuple[str, str] | None:
    """(the endpoint's token, where it was found): ``daemon.http_token``, else the
    credential file ``$CREDENTIALS_DIRECTORY/mediasync-http-token`` (systemd
    ``LoadCredential=``), as the API key is found. None when neither is set."""
    if token:
        return token, "daemon.http_token"
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds:
        p = Path(creds) / TOKEN_CREDENTIAL
        try:
            value = p.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or type(e).__name__
            raise ConfigError(f"cannot read {str(p)!r}: {reason}",
                              key="daemon.http_token") from None
        if value:
            return value, f"$CREDENTIALS_DIRECTORY/{TOKEN_CREDENTIAL}"
    return None


def http_token(listen: Listen | None, token: str | None, env: Mapping[str, str]) -> str | None:
    """The token the endpoint requires, or None (loopback without one). Beyond loopback
    a token is required: without one it is a config error naming the key."""
    if listen is None:
        return None
    found = find_http_token(token, env)
    if found is None and not listen.loopback:
        raise ConfigError(f"required: daemon.http = \"{listen}\" listens beyond loopback; set "
                          "http_token (or the systemd credential "
                          f"{TOKEN_CREDENTIAL}), or listen on 127.0.0.1",
                          key="daemon.http_token")
    return found[0] if found else None


def token_matches(expected: str, given: str) -> bool:
    """In constant time: a wrong guess learns nothing from how long the answer took."""
    return hmac.compare_digest(expected.encode(), given.encode())


# -- [notify] -------------------------------------------------------------------

# The events a notification may be sent for: name → what it means (README, `on`).
# Another cause is one line here and one detector in mediasync/report/alerts.py.
EVENTS: dict[str, str] = {
    "file_failed": "a file failed for good: the service's verdict on its bytes, not a "
                   "transient error",
    "halted": "the daemon stopped calling the API (the key was refused)",
    "quota_used": "a model's daily quota is used; it resumes at midnight Pacific",
    "cap_reached": "today's spending cap (limits.max_daily_tokens or max_daily_cost) is "
                   "reached",
    "folder_unavailable": "a folder (or a disk mounted in one) unavailable for longer than "
                          "notify.unavailable_after",
    "store_full": "the project's file store is full: uploads wait for room (other uploads on "
                  "the key, or a storage_budget too large for them)",
    "model_missing": "a configured model is not served (retired or unknown) or a service "
                     "tier is refused for the key: its outputs wait for a config fix",
    "daily_summary": "a summary of the day at notify.summary_at (off unless named in `on`)",
}
OFF_BY_DEFAULT = frozenset({"daily_summary"})
DEFAULT_NOTIFY: dict[str, Any] = {
    "urls": [],
    "on": [e for e in EVENTS if e not in OFF_BY_DEFAULT],
    "unavailable_after": "1h",
    "summary_at": "09:00",
    "gather": "30s",
    "timeout": "30s",
}


@dataclass(frozen=True)
class NotifyConfig:
    urls: tuple[str, ...] = field(default=(), repr=False)  # they hold tokens, passwords
    on: frozenset[str] = field(
        default_factory=lambda: frozenset(EVENTS) - OFF_BY_DEFAULT)
    unavailable_after: float = 3600.0
    summary_at: tuple[int, int] = (9, 0)  # local time (hour, minute)
    gather: float = 30.0  # more of one event are awaited this long, then sent as one
    timeout: float = 30.0


_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_notify(raw: Any) -> NotifyConfig:
    t = {**DEFAULT_NOTIFY, **as_table(raw, "notify")}
    check_keys(t, tuple(DEFAULT_NOTIFY), "notify")
    urls = as_str_list(t["urls"], "notify.urls")
    for i, url in enumerate(urls):
        check_url(url, f"notify.urls[{i}]")
    on = as_str_list(t["on"], "notify.on")
    for i, name in enumerate(on):
        if name not in EVENTS:
            import difflib

            close = difflib.get_close_matches(name, list(EVENTS), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{name!r} is not one of {', '.join(EVENTS)}{hint}",
                              key=f"notify.on[{i}]")
    at = as_str(t["summary_at"], "notify.summary_at").strip()
    m = _CLOCK.match(at)
    if not m:
        raise ConfigError(f"{at!r} is not a time of day like \"09:00\"", key="notify.summary_at")
    return NotifyConfig(
        urls=urls,
        on=frozenset(on),
        unavailable_after=as_duration(t["unavailable_after"], "notify.unavailable_after"),
        summary_at=(int(m[1]), int(m[2])),
        gather=as_duration(t["gather"], "notify.gather"),
        timeout=as_duration(t["timeout"], "notify.timeout", positive=True),
    )


def check_url(url: str, key: str) -> None:
    """A URL Apprise can send to, or a config error naming the key. The URL itself is
    not repeated: it often holds a password or a token."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    shown = f"{scheme}://…" if scheme else "the value"
    if not scheme:
        raise ConfigError(f"{shown} is not a URL (expected e.g. \"ntfy://topic\", "
                          "\"mailto://user:password@example.com\", \"json://host/path\")",
                          key=key)
    import apprise  # only a config that names URLs pays for the import

    quiet = logging.getLogger("apprise")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # Apprise logs its own refusal; ours is the one line
    try:
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    finally:
        quiet.setLevel(level)
    if plugin is None:
        raise ConfigError(f"{shown} is not a notification URL Apprise can use (unknown "
                          f"scheme {scheme!r}, or a part missing; see Apprise's list of "
                          "services)", key=key)


def describe_url(url: str) -> str:
    """A URL as logs may show it: Apprise's privacy form (passwords and tokens masked)."""
    import apprise

    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        return url.split("://", 1)[0] + "://…"
    return plugin.url(privacy=True).split("?", 1)[0]


__all__ = [
    "DEFAULT_NOTIFY", "EVENTS", "OFF_BY_DEFAULT", "TOKEN_CREDENTIAL", "Listen", "NotifyConfig",
    "check_url", "describe_url", "find_http_token", "http_token", "parse_listen", "parse_notify",
    "token_matches",
]
