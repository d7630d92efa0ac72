"""What several commands share: exit codes, the one-line error, the API client a
person at a terminal gets, the state database's path, and a few display helpers.

A user's mistake ends as one line on stderr: configuration faults raise
ConfigError (cli.py prints it, exit 2); API faults are turned into a line by
the command with ``describe_api_error`` and ``api_exit``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mediasync.app.logs import setup_logging
from mediasync.config import Config, load_config_or_default
from mediasync.gemini.errors import ApiError, TransportError
from mediasync.gemini.models import File
from mediasync.rules.failures import classify

if TYPE_CHECKING:
    from mediasync.app.apiclient import EventHook
    from mediasync.gemini import GeminiClient
    from mediasync.store import Store

log = logging.getLogger("mediasync")

# The meanings are listed in cli.py's docstring and --help epilog.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_API, EXIT_LOCKED, EXIT_QUOTA = 0, 1, 2, 3, 4, 5
EXIT_BATCH = 6  # `sync --no-wait`: outputs wait in a recorded batch job


def err(message: str) -> None:
    print(f"mediasync: {message}", file=sys.stderr)


def tool_logging(args: argparse.Namespace) -> None:
    """Logging for the tools beside the daemon: info unless --log-level says otherwise."""
    setup_logging(args.log_level or "info")


def load(args: argparse.Namespace) -> tuple[Path | None, Config]:
    """The config (or the defaults) for run, sync and status, with its log level set up."""
    path, config = load_config_or_default(args.config, os.environ)
    setup_logging(args.log_level or config.daemon.log_level)
    return path, config


def api_fatal(e: ApiError) -> bool:
    """The key refused (the failure vocabulary's "auth") or no service: nothing later
    can work.

    Only a TransportError means unreachable: a ProtocolError (an answer we could
    not read) has code 0 too, but the service was there and took the key.
    """
    return isinstance(e, TransportError) or classify(e) == "auth"


def api_exit(e: ApiError) -> int:
    """Exit code for an API fault: 3 for a refused key or no service, else 1."""
    return EXIT_API if api_fatal(e) else EXIT_FAILED


def describe_api_error(e: ApiError) -> str:
    if e.key_invalid:
        return f"the API key was refused ({e})"
    if isinstance(e, TransportError):
        return f"the service could not be reached ({e.message or e.status})"
    return str(e)


def tool_client(config: Config, *, quick: bool = False, env: Mapping[str, str] | None = None,
                event_hooks: Mapping[str, list[EventHook]] | None = None) -> GeminiClient:
    """The client of a command someone waits for at a terminal (``env``: the
    process's by default; ``event_hooks``: httpx's, passed through)."""
    # Imported late: the daemon's wiring (scheduler, engine) is not needed to parse --help.
    from mediasync.app.apiclient import make_client
    from mediasync.gemini.retry import RetryPolicy

    c = make_client(config, os.environ if env is None else env, event_hooks=event_hooks)
    # Someone is waiting at a terminal: fewer, shorter retries than the daemon's.
    c.retry = RetryPolicy(max_attempts=2 if quick else 3, max_delay=2.0 if quick else 4.0)
    return c


def state_db(config: Config) -> Path:
    from mediasync.app.instance import STATE_FILE, state_dir

    return state_dir(config, os.environ) / STATE_FILE


def open_state(config: Config) -> Store | None:
    """The daemon's database, read-only, or None when it never ran or cannot be opened."""
    from mediasync.store import Store, StoreError

    db = state_db(config)
    if not db.exists():
        return None
    try:
        return Store(db, readonly=True)  # works beside a running daemon (WAL)
    except StoreError as e:
        log.debug("%s", e)
        return None


def remote_usage(files: Iterable[File]) -> tuple[int, int]:
    """(bytes used, how many files mediasync made) of a listing of the project."""
    from mediasync.rules.ownership import DISPLAY_PREFIX

    files = list(files)
    used = sum(f.size_bytes or 0 for f in files)
    ours = sum(1 for f in files if (f.display_name or "").startswith(DISPLAY_PREFIX))
    return used, ours


def human(n: float | None) -> str:
    from mediasync.rules.units import human_bytes

    return "-" if n is None else human_bytes(n)


def stamp(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when else "-"
