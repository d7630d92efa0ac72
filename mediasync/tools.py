"""The user's tools beside the daemon: init, check, files, ask, demo."""

from __future__ import annotations

import argparse
from collections.abc import Callable

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the tool subcommands on the CLI's parser."""
