"""Argument parsing and dispatch to ``mediasync/commands/``. A user's mistake gets one
clear line, not a traceback.

Exit codes:
  0  success
  1  `sync` finished, but some files failed (the summary says which and why)
  2  bad command line or configuration
  3  the API key was refused, or the service could not be reached
  4  another mediasync is using the state directory
  5  `sync` stopped because a model's daily quota (or the daily cost/token cap) is
     used; nothing failed, run it again after midnight Pacific time
  6  `sync --no-wait` left outputs waiting in a batch job (recorded; the next `sync`
     or `mediasync run` collects them)
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from mediasync import __version__
from mediasync.commands.common import EXIT_LOCKED, EXIT_USAGE

log = logging.getLogger("mediasync")

# In --help's order; `emulator` (between status and init) is the emulator package's.
DAEMON_COMMANDS = ("run", "sync", "status")
TOOL_COMMANDS = ("init", "check", "files", "ask", "demo")


def _command(name: str) -> ModuleType:
    # Imported on use: `--help` and the light commands need not load the daemon.
    return importlib.import_module(f"mediasync.commands.{name}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mediasync",
        description="Mirror media folders to the Gemini File API and write captions and "
        "transcripts next to the files.",
        epilog="Exit codes: 0 ok, 1 some files failed, 2 bad usage or config, "
        "3 API key refused or service unreachable, 4 another instance running, "
        "5 daily quota or cap used (sync), 6 outputs wait in a batch job (sync --no-wait).",
    )
    p.add_argument("-c", "--config", type=Path,
                   help="config file (default: $MEDIASYNC_CONFIG, then "
                   "~/.config/mediasync/config.toml)")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                   help="overrides daemon.log_level")
    p.add_argument("--version", action="version", version=f"mediasync {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    from mediasync import emulator

    for name in DAEMON_COMMANDS:
        _add(sub, name)
    em = sub.add_parser("emulator", help="serve a local emulator of the Gemini File API")
    emulator.add_arguments(em)
    for name in TOOL_COMMANDS:
        _add(sub, name)
    return p


def _add(sub: argparse._SubParsersAction, name: str) -> None:
    module = _command(name)
    module.add_arguments(sub.add_parser(name, help=module.HELP))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "emulator":
        from mediasync import emulator
        from mediasync.app.logs import setup_logging

        setup_logging(args.log_level or "info")
        return emulator.run_from_args(args)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from mediasync.app.instance import InstanceLocked
    from mediasync.config import ConfigError
    from mediasync.store import StoreError

    try:
        return _command(args.command).main(args)
    except ConfigError as e:
        print(f"mediasync: {e}", file=sys.stderr)
        return EXIT_USAGE
    except InstanceLocked as e:
        print(f"mediasync: {e}", file=sys.stderr)
        return EXIT_LOCKED
    except StoreError as e:
        print(f"mediasync: {e}", file=sys.stderr)
        return EXIT_USAGE
