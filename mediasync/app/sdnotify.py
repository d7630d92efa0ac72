"""sd_notify(3) in plain Python: readiness, status, watchdog and reload messages.

The protocol is one datagram of newline-separated KEY=VALUE assignments sent to
the AF_UNIX socket named by $NOTIFY_SOCKET. Implemented here rather than via
libsystemd bindings so the daemon has no native dependency and runs unchanged
outside systemd (where every call is a no-op).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages; never raises, so a broken socket cannot stop the daemon."""

    def __init__(self, address: str | None = None, watchdog_interval: float | None = None):
        # address is the socket path, or an abstract name starting with '\0'.
        self._address = address
        self.enabled: bool = address is not None
        self.watchdog_interval: float | None = watchdog_interval
        self._sock: socket.socket | None = None
        self._failure_logged = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Notifier:
        """Build from NOTIFY_SOCKET / WATCHDOG_USEC / WATCHDOG_PID; a no-op when unset."""
        raw = env.get("NOTIFY_SOCKET", "")
        address: str | None
        if not raw:
            address = None
        elif raw.startswith("@"):
            # Linux abstract namespace: systemd writes '@', the kernel wants a NUL byte.
            address = "\0" + raw[1:]
        elif raw.startswith("/"):
            address = raw
        else:
            # vsock: addresses and relative paths are not for us; stay quiet.
            log.debug("ignoring unsupported NOTIFY_SOCKET %r", raw)
            address = None
        return cls(address, _watchdog_interval(env))

    # -- messages ---------------------------------------------------------

    def ready(self, status: str | None = None) -> None:
        """READY=1, optionally with a STATUS= line in the same datagram."""
        lines = ["READY=1"]
        if status is not None:
            lines.append(f"STATUS={_one_line(status)}")
        self._send(lines)

    def status(self, text: str) -> None:
        """STATUS=..., shown by `systemctl status`."""
        self._send([f"STATUS={_one_line(text)}"])

    def watchdog(self) -> None:
        """WATCHDOG=1 keep-alive; call every `watchdog_interval` seconds."""
        self._send(["WATCHDOG=1"])

    def reloading(self, monotonic_usec: int) -> None:
        """RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC), as Type=notify-reload requires.

        Follow with ready() once the new configuration is in effect.
        """
        self._send(["RELOADING=1", f"MONOTONIC_USEC={int(monotonic_usec)}"])

    def stopping(self) -> None:
        """STOPPING=1: shutdown has begun."""
        self._send(["STOPPING=1"])

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- transport --------------------------------------------------------

    def _send(self, lines: list[str]) -> None:
        if self._address is None:
            return
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            # Log once: a missing socket would otherwise flood the log every watchdog tick.
            if not self._failure_logged:
                self._failure_logged = True
                log.debug("sd_notify send to %r failed: %s", self._address, exc)
            self.close()


def _one_line(text: str) -> str:
    # A newline would start a new assignment in the datagram.
    return " ".join(text.splitlines())


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    usec_raw = env.get("WATCHDOG_USEC", "")
    if not usec_raw:
        return None
    try:
        usec = int(usec_raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid_raw = env.get("WATCHDOG_PID", "")
    if pid_raw:
        try:
            if int(pid_raw) != os.getpid():
                # The watchdog is meant for another process (e.g. our parent).
                return None
        except ValueError:
            return None
    # Ping at half the timeout, as sd_watchdog_enabled(3) recommends.
    return usec / 2 / 1_000_000
