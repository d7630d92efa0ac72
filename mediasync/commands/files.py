"""`mediasync files`: the remote side of the project: list, delete, purge."""

from __future__ import annotations

import argparse
import asyncio
import os

from mediasync.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    api_exit,
    api_fatal,
    describe_api_error,
    err,
    human,
    open_state,
    remote_usage,
    stamp,
    tool_client,
    tool_logging,
)
from mediasync.config import Config, load_config_or_default
from mediasync.gemini import ApiError, File, GeminiClient
from mediasync.media.formats import MAX_PROJECT_BYTES
from mediasync.store import Meta

HELP = "the remote side: list, delete, purge files in the project"


def add_arguments(p: argparse.ArgumentParser) -> None:
    files = p.add_subparsers(dest="files_command", metavar="ACTION")
    files.required = True
    files.add_parser("list", help="every remote file: name, size, state, expiry, display name")
    d = files.add_parser("delete", help="delete one remote file")
    d.add_argument("name", metavar="NAME", help="files/abc123 or abc123")
    pg = files.add_parser("purge", help="delete the remote files mediasync created "
                          "(a dry run unless --yes)")
    pg.add_argument("--all", action="store_true",
                    help="every file in the project, not only mediasync's")
    pg.add_argument("--yes", action="store_true", help="really delete (default: only list)")
    pg.add_argument("--any-instance", action="store_true",
                    help="also the files of other mediasync instances (other state "
                    "directories) on this key")


def main(args: argparse.Namespace) -> int:
    tool_logging(args)
    _, config = load_config_or_default(args.config, os.environ)
    action = {
        "list": _files_list,
        "delete": _files_delete,
        "purge": _files_purge,
    }[args.files_command]

    async def go() -> int:
        async with tool_client(config) as client:
            return await action(client, args, config)

    try:
        return asyncio.run(go())
    except ApiError as e:
        err(describe_api_error(e))
        return api_exit(e)


def _by_age(files: list[File]) -> list[File]:
    return sorted(files, key=lambda f: (f.create_time is None, f.create_time or 0, f.name))


async def _files_list(client: GeminiClient, args: argparse.Namespace, config: Config) -> int:
    files = _by_age(await client.list_files())
    if not files:
        print("no remote files")
        return EXIT_OK
    rows = [("NAME", "SIZE", "STATE", "EXPIRES", "DISPLAY NAME")]
    rows += [(f.name, human(f.size_bytes), f.state, stamp(f.expiration_time),
              f.display_name or "") for f in files]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    used, ours = remote_usage(files)
    print(f"{len(files)} file(s), {ours} by mediasync; {human(used)} of "
          f"{human(MAX_PROJECT_BYTES)} used")
    return EXIT_OK


def _remote_name(text: str) -> str:
    return text if text.startswith("files/") else f"files/{text}"


async def _files_delete(client: GeminiClient, args: argparse.Namespace, config: Config) -> int:
    name = _remote_name(args.name.strip())
    try:
        await client.delete_file(name)
    except ApiError as e:
        if e.file_gone:
            err(f"{name}: no such file (or it has expired, or belongs to another project)")
            return EXIT_FAILED
        raise
    print(f"deleted {name}")
    return EXIT_OK


def _this_instance(config: Config) -> str | None:
    """The instance id of this config's state directory, None when it never ran."""
    store = open_state(config)
    if store is None:
        return None
    try:
        return store.read(Meta.INSTANCE_ID) or None
    finally:
        store.close()


async def _files_purge(client: GeminiClient, args: argparse.Namespace, config: Config) -> int:
    from mediasync.rules.ownership import DISPLAY_PREFIX, owner_of

    files = _by_age(await client.list_files())
    instance = None if args.any_instance else _this_instance(config)

    def ours(display: str | None) -> bool:
        # This instance's copies and old-form names (no instance id); another
        # instance's (a second state directory on the same key) only on request.
        owner = owner_of(display)
        return owner is not None and (args.any_instance or owner[0] in (None, instance))

    doomed = [f for f in files if args.all or ours(f.display_name)]
    others = sum(1 for f in files if owner_of(f.display_name) and not ours(f.display_name))
    whose = "remote file(s) in the project" if args.all else "remote file(s) created by mediasync"
    total = human(sum(f.size_bytes or 0 for f in doomed))
    if others and not args.all:
        print(f"leaving {others} file(s) of other mediasync instances on this key "
              "(--any-instance deletes those too)")
    if not doomed:
        print(f"nothing to delete: no {whose}")
        return EXIT_OK
    if not args.yes:
        for f in doomed:
            print(f"would delete {f.name}  {human(f.size_bytes)}  {f.display_name or ''}")
        print(f"dry run: {len(doomed)} {whose}, {total}; pass --yes to delete them")
        return EXIT_OK
    failed = 0
    for f in doomed:
        try:
            await client.delete_file(f.name)
        except ApiError as e:
            if not e.file_gone:  # gone already (expired meanwhile) is what we wanted
                if api_fatal(e):
                    raise
                err(f"{f.name}: {e}")
                failed += 1
                continue
        print(f"deleted {f.name}  {human(f.size_bytes)}  {f.display_name or ''}")
    print(f"deleted {len(doomed) - failed} of {len(doomed)} {whose}, {total}")
    # No need to touch the daemon's database: its refresh notices the vanished
    # copies and uploads those still needed again.
    if not args.all or any((f.display_name or "").startswith(DISPLAY_PREFIX) for f in doomed):
        print("a running mediasync uploads the files it still mirrors again on its next refresh")
    return EXIT_FAILED if failed else EXIT_OK


