"""`mediasync demo`: the handler; the demo itself is :mod:`mediasync.commands.demo_run`."""

from __future__ import annotations

import argparse

from mediasync.commands.common import tool_logging

HELP = ("see it work: the emulator, sample media and the real daemon in a temporary folder "
        "(no API key needed)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep", action="store_true", help="keep the temporary folder afterwards")
    p.add_argument("--timeout", type=float, default=60.0, help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    tool_logging(args)
    from mediasync.commands import demo_run

    return demo_run.run(keep=args.keep, timeout=args.timeout)
