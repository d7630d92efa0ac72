"""`mediasync status`: what is mirrored, processing, expiring, failed, read from the
state database (read-only, so it works beside a running daemon)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from mediasync.commands.common import EXIT_FAILED, EXIT_OK, err, load, state_db
from mediasync.config import Config

HELP = "what is mirrored, processing, expiring, failed"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--brief", action="store_true", help="one line per folder")


# Stands for the "files" array in the document until the parts' JSON takes its place:
# no text of the document before it can hold a NUL.
_FILES = "\0mediasync status files\0"


def main(args: argparse.Namespace) -> int:
    _, config = load(args)
    return show(config, as_json=args.json, brief=args.brief)


def show(config: Config, *, as_json: bool, brief: bool) -> int:
    import sqlite3

    from mediasync.app.instance import lock_holder
    from mediasync.report import batches, split, status
    from mediasync.store import Meta, Store, StoreError, is_damage

    db = state_db(config)
    if not db.exists():
        holder = lock_holder(db.parent)
        if holder:
            err(f"the state database {db} is missing; the running mediasync (pid {holder}) "
                "writes it back within seconds")
        else:
            err(f"nothing synced yet ({db} does not exist)")
        if as_json:
            print(json.dumps(status.render_json([], None)))  # no state: nothing held
        return EXIT_OK
    now = time.time()
    try:
        store = Store(db, readonly=True)
        try:
            halted = store.read(Meta.HALTED) or None
            holds = status.held(store, config)
            jobs = batches.open_jobs(store, now)
            unavailable = status.unavailable_folders(store)
            quota = status.quota_state(store, config, now)
            store_use = status.store_state(store, config, now)
            recovery = status.recovery(store, now)
        finally:
            store.close()  # before split.parts forks: no connection may cross a fork
        # The files: each range of paths read, decided and written on a core of its own.
        # JSON is indented for a person at a terminal, compact for a program (a pipe, a
        # file), where 100,000 files' indentation doubled the size and the time.
        indent = 2 if as_json and sys.stdout.isatty() else None
        parts = split.parts(db, config, now, jobs, (
            (lambda reports: status.json_part(reports, indent)) if as_json else
            (lambda reports: status.summarise(reports, config, now, verbose=not brief))))
    except (StoreError, sqlite3.Error) as e:
        # Never a traceback: say what is wrong and what heals it.
        if is_damage(e) or is_damage(e.__cause__ or e):
            err(f"the state database {db} is damaged ({e.__cause__ or e}); the next "
                "`mediasync sync`, or the daemon when it starts, keeps it aside and builds a "
                "new one without uploading or paying again")
        else:
            err(f"cannot read the state database {db}: {e}")
        return EXIT_FAILED
    store_use["not_kept"] = sum(p.not_kept for p in parts)
    if as_json:
        doc = {**status.render_json([], halted, holds, jobs), **quota}
        doc["tokens"] = {k: sum(p.tokens[k] for p in parts) for k in doc["tokens"]}
        doc["files"] = _FILES  # written by the parts, in its place below
        doc["unavailable"] = unavailable
        doc["store"] = store_use
        doc["recovery"] = recovery
        text = json.dumps(doc, indent=indent)
        print(text.replace(json.dumps(_FILES), status.files_json(parts, indent), 1))
    else:
        if recovery is not None:
            print(status.render_recovery(recovery))
        for folder, why in sorted(unavailable.items()):
            print(f"UNAVAILABLE: {folder} {why}; nothing in it counts as deleted until it is back")
        print(status.render_parts(parts, config, halted, holds=holds, jobs=jobs))
        print(status.render_store(store_use))
        for line in status.render_quota(quota):
            print(line)
    return EXIT_OK
