"""`mediasync run`: the daemon in the foreground, until SIGTERM (``daemon.py``)."""

from __future__ import annotations

import argparse
import asyncio
import os

from mediasync.commands.common import load

HELP = "run the daemon in the foreground (what systemd starts)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """No options of its own: -c and --log-level are the parser's."""


def main(args: argparse.Namespace) -> int:
    path, config = load(args)
    from mediasync.app.daemon import Daemon

    return asyncio.run(Daemon(config, path, os.environ).run())
