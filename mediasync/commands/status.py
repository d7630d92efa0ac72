"""`mediasync status`: what is mirrored, processing, expiring, failed, read from the
state database (read-only, so it works beside a running daemon)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from mediasync.commands.common import EXIT_OK, load, state_db
from mediasync.config import Config

HELP = "what is mirrored, processing, expiring, failed"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--brief", action="store_true", help="one line per folder")


def main(args: argparse.Namespace) -> int:
    _, config = load(args)
    return show(config, as_json=args.json, brief=args.brief)


def show(config: Config, *, as_json: bool, brief: bool) -> int:
    from mediasync.report import batches, status
    from mediasync.store import Meta, Store

    db = state_db(config)
    if not db.exists():
        print(f"mediasync: nothing synced yet ({db} does not exist)", file=sys.stderr)
        if as_json:
            print(json.dumps(status.render_json([], None)))  # no state: nothing held
        return EXIT_OK
    store = Store(db, readonly=True)
    try:
        halted = store.read(Meta.HALTED) or None
        holds = status.held(store, config)
        reports = status.build(store, config)
        unavailable = status.unavailable_folders(store)
        quota = status.quota_state(store, config, time.time())
        jobs = batches.open_jobs(store, time.time())
    finally:
        store.close()
    if as_json:
        doc = {**status.render_json(reports, halted, holds, jobs), **quota}
        doc["unavailable"] = unavailable
        print(json.dumps(doc, indent=2))
    else:
        for folder, why in sorted(unavailable.items()):
            print(f"UNAVAILABLE: {folder} {why}; nothing in it counts as deleted until it is back")
        print(status.render_text(reports, config, time.time(), halted, verbose=not brief,
                                 holds=holds, jobs=jobs))
        for line in status.render_quota(quota):
            print(line)
    return EXIT_OK
