"""Logging setup: one line per event, journald-aware, with secrets redacted.

Under systemd, stderr goes to journald, which adds its own timestamp and reads a
leading ``<N>`` as the syslog priority; so there we print ``<6>message``.
Elsewhere (a terminal, a file) we print ``2026-11-21 10:00:00 INFO message``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

from mediasync.gemini.redact import any_secrets, redact
from mediasync.rules.naming import shown

# Libraries that log per request / per event at INFO or DEBUG.
NOISY_LOGGERS = ("httpx", "httpcore", "apscheduler", "watchdog")

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# sd-daemon(3) / syslog priorities.
_SYSLOG_PREFIX = {
    logging.CRITICAL: "<2>",
    logging.ERROR: "<3>",
    logging.WARNING: "<4>",
    logging.INFO: "<6>",
    logging.DEBUG: "<7>",
}

class RedactSecrets(logging.Filter):
    """Rewrites a record's final text (message, traceback, stack) with secrets redacted.

    Filters run before formatting, so the record is rendered here and frozen:
    msg becomes the finished string and args are dropped.
    """

    _exc_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if not any_secrets():
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exc_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class _OneLineFormatter(logging.Formatter):
    """Joins multi-line output (messages, tracebacks) so each event is one line."""

    def __init__(self, journal: bool):
        if journal:
            super().__init__("%(message)s")
        else:
            super().__init__("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
        self._journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        text = " | ".join(line for line in text.splitlines() if line.strip())
        # A file name that is not UTF-8 shows its odd bytes as \\xe9, as `status` does.
        text = shown(text)
        if self._journal:
            text = _SYSLOG_PREFIX.get(_bucket(record.levelno), "<6>") + text
        return text


def _bucket(levelno: int) -> int:
    # Custom levels map to the nearest standard level at or below them.
    for level in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= level:
            return level
    return logging.DEBUG


def _stream_is_journal(env: Mapping[str, str], stream: TextIO) -> bool:
    """True when ``stream`` is the journald stream that $JOURNAL_STREAM names.

    systemd sets JOURNAL_STREAM=<dev>:<inode> of the stderr it connected; child
    processes may inherit the variable with stderr redirected elsewhere, so a
    real file descriptor is compared. Streams without one (tests) trust the variable.
    """
    value = env.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return True
    try:
        dev, ino = (int(part) for part in value.split(":", 1))
        st = os.fstat(fd)
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def parse_level(level: str) -> int:
    try:
        return _LEVELS[level.strip().lower()]
    except KeyError:
        choices = ", ".join(k for k in _LEVELS if k != "warn")
        raise ValueError(f"unknown log level {level!r}; choose one of {choices}") from None


def setup_logging(
    level: str = "info",
    *,
    env: Mapping[str, str] = os.environ,
    stream: TextIO | None = None,
) -> None:
    """Configure the root logger; safe to call again (e.g. on reload) to change the level."""
    levelno = parse_level(level)
    if stream is None:
        stream = sys.stderr
    journal = _stream_is_journal(env, stream)

    handler = logging.StreamHandler(stream)
    handler.setFormatter(_OneLineFormatter(journal))
    handler.addFilter(RedactSecrets())
    handler._mediasync = True  # type: ignore[attr-defined]  # lets a re-run replace it

    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_mediasync", False):
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(levelno)

    # Library chatter (one INFO line per HTTP request) would drown our own lines.
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.NOTSET if levelno <= logging.DEBUG else logging.WARNING
        )
    logging.captureWarnings(True)
