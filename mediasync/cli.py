"""Argument parsing and exit codes. A user's mistake gets one clear line, not a traceback.

Exit codes:
  0  success
  1  `sync` finished, but some files failed (the summary says which and why)
  2  bad command line or configuration
  3  the API key was refused, or the service could not be reached
  4  another mediasync is using the state directory
  5  `sync` stopped because a model's daily quota (or the daily cost/token cap) is
     used; nothing failed, run it again after midnight Pacific time
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from mediasync import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_API, EXIT_LOCKED, EXIT_QUOTA = 0, 1, 2, 3, 4, 5

log = logging.getLogger("mediasync")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mediasync",
        description="Mirror media folders to the Gemini File API and write captions and "
        "transcripts next to the files.",
        epilog="Exit codes: 0 ok, 1 some files failed, 2 bad usage or config, "
        "3 API key refused or service unreachable, 4 another instance running, "
        "5 daily quota or cap used (sync).",
    )
    p.add_argument("-c", "--config", type=Path,
                   help="config file (default: $MEDIASYNC_CONFIG, then "
                   "~/.config/mediasync/config.toml)")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                   help="overrides daemon.log_level")
    p.add_argument("--version", action="version", version=f"mediasync {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sub.add_parser("run", help="run the daemon in the foreground (what systemd starts)")
    sub.add_parser("sync", help="one pass: upload, prompt, write sidecars; exit 1 if any failed")
    st = sub.add_parser("status", help="what is mirrored, processing, expiring, failed")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.add_argument("--brief", action="store_true", help="one line per folder")

    from mediasync import emulator, tools

    em = sub.add_parser("emulator", help="serve a local emulator of the Gemini File API")
    emulator.add_arguments(em)
    tools.add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from mediasync.logs import setup_logging

    if args.command == "emulator":
        setup_logging(args.log_level or "info")
        from mediasync import emulator

        return emulator.run_from_args(args)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from mediasync import tools
    from mediasync.config import ConfigError, load_config_or_default
    from mediasync.daemon import InstanceLocked
    from mediasync.logs import setup_logging
    from mediasync.store import StoreError

    try:
        if args.command in tools.COMMANDS:
            setup_logging(args.log_level or "info")
            return tools.COMMANDS[args.command](args)
        path, config = load_config_or_default(args.config, os.environ)
        setup_logging(args.log_level or config.daemon.log_level)
        if args.command == "run":
            from mediasync.daemon import Daemon

            return asyncio.run(Daemon(config, path, os.environ).run())
        if args.command == "sync":
            from mediasync import daemon

            progress = None
            if sys.stderr.isatty():
                progress = _progress
                setup_logging(args.log_level or config.daemon.log_level,
                              stream=_ClearsProgress(sys.stderr))
            return asyncio.run(daemon.sync(config, os.environ, progress=progress))
        if args.command == "status":
            return status(config, as_json=args.json, brief=args.brief)
    except ConfigError as e:
        print(f"mediasync: {e}", file=sys.stderr)
        return EXIT_USAGE
    except InstanceLocked as e:
        print(f"mediasync: {e}", file=sys.stderr)
        return EXIT_LOCKED
    except StoreError as e:
        print(f"mediasync: {e}", file=sys.stderr)
        return EXIT_USAGE
    raise AssertionError(args.command)


def status(config, *, as_json: bool, brief: bool) -> int:  # noqa: ANN001
    from mediasync import report
    from mediasync.daemon import STATE_FILE, state_dir
    from mediasync.store import Store

    db = state_dir(config, os.environ) / STATE_FILE
    if not db.exists():
        print(f"mediasync: nothing synced yet ({db} does not exist)", file=sys.stderr)
        if as_json:
            print(json.dumps(report.render_json([], None)))
        return EXIT_OK
    store = Store(db, readonly=True)
    try:
        halted = store.get_meta("halted") or None
        reports = report.build(store, config)
        unavailable = report.unavailable_folders(store)
        quota = report.quota_state(store, config, time.time())
    finally:
        store.close()
    if as_json:
        doc = {**report.render_json(reports, halted), **quota}
        doc["unavailable"] = unavailable
        print(json.dumps(doc, indent=2))
    else:
        for folder, why in sorted(unavailable.items()):
            print(f"UNAVAILABLE: {folder} {why}; nothing in it counts as deleted until it is back")
        print(report.render_text(reports, config, time.time(), halted, verbose=not brief))
        for line in report.render_quota(quota):
            print(line)
    return EXIT_OK


class _ClearsProgress:
    """A terminal stream for log lines that first wipes the progress line under them."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self._line_start = True

    def write(self, text: str) -> int:
        if self._line_start and text:
            self.inner.write("\r\033[K")
        self.inner.write(text)
        self._line_start = text.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def fileno(self) -> int:
        return self.inner.fileno()


def _progress(engine) -> None:  # noqa: ANN001
    """One self-overwriting line on a terminal: files and bytes."""
    from mediasync.plan import human_bytes

    c = engine.store.counts()
    sys.stderr.write(
        f"\r\033[K{c['mirrored']}/{c['files']} files mirrored "
        f"({human_bytes(c['bytes_mirrored'])}) · {c['uploading']} uploading "
        f"({human_bytes(c['bytes_uploading'])} sent) · {c['sidecars']} sidecars written"
    )
    sys.stderr.flush()
