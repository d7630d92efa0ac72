"""`mediasync ask`: one question about one file, through the daemon's mirrored copy
when it has a live one, else through a temporary upload that is deleted after."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import time
from pathlib import Path

from mediasync.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    api_exit,
    describe_api_error,
    err,
    open_state,
    state_db,
    tool_client,
    tool_logging,
)
from mediasync.config import Config, load_config_or_default
from mediasync.gemini import ApiError
from mediasync.media.formats import media_type

log = logging.getLogger("mediasync")

HELP = ("ask one question about a file (uses its mirrored copy when there is one, else "
        "uploads a temporary copy)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="PATH", help="a media file")
    p.add_argument("question", metavar="QUESTION", help="the prompt, e.g. \"Who is in it?\"")
    p.add_argument("--model", help="model to ask (default: api.model)")


def main(args: argparse.Namespace) -> int:
    tool_logging(args)
    _, config = load_config_or_default(args.config, os.environ)
    path = Path(os.path.abspath(os.path.expanduser(args.path)))
    mt = media_type(path)
    if mt is None:
        err(f"{path}: not a supported media file (see README: Configuration)")
        return EXIT_USAGE
    if not path.is_file():
        err(f"{path}: no such file")
        return EXIT_USAGE
    if not args.question.strip():
        err("the question is empty")
        return EXIT_USAGE
    model = args.model or config.api.model
    try:
        text, blocked = asyncio.run(_ask(config, path, mt.mime, model, args.question))
    except ApiError as e:
        err(describe_api_error(e))
        return api_exit(e)
    except OSError as e:
        err(f"{path}: {e.strerror or e}")
        return EXIT_FAILED
    if blocked:
        err(f"the answer was blocked: {blocked}")
        return EXIT_FAILED
    print(text)
    return EXIT_OK


def _mirrored_copy(config: Config, path: Path) -> tuple[str, str] | None:
    """(uri, mime) of the daemon's live remote copy of this file's current bytes."""
    from mediasync.rules.states import usable

    store = open_state(config)
    if store is None:
        return None
    try:
        st = path.stat()
        for key in dict.fromkeys((str(path), os.path.realpath(path))):
            row = store.get_path(key)
            if row is None or row.gone_at is not None or row.sha256 is None:
                continue
            # The recorded hash is only the file's if the file has not changed since.
            if (row.size, row.mtime_ns, row.inode) != (st.st_size, st.st_mtime_ns, st.st_ino):
                continue
            c = store.get_content(row.sha256)
            if c and c.uri and usable(c, time.time()):
                return c.uri, c.copy_mime
    except Exception as e:  # a busy or odd database: fall back to an upload
        log.debug("cannot read %s: %s", state_db(config), e)
    finally:
        store.close()
    return None


async def _ask(config: Config, path: Path, mime: str, model: str,
               question: str) -> tuple[str | None, str | None]:
    """(answer, None), or (None, block reason)."""
    from mediasync.rules import ownership

    mirrored = _mirrored_copy(config, path)
    async with tool_client(config) as client:
        gen = None
        if mirrored is not None:
            uri, mirrored_mime = mirrored
            log.info("asking through the mirrored copy (no upload)")
            try:
                gen = await client.generate(model, file_uri=uri, mime_type=mirrored_mime,
                                            prompt=question)
            except ApiError as e:
                if not e.file_gone:
                    raise
                log.info("the mirrored copy is gone; uploading a temporary one")
        if gen is None:
            with path.open("rb") as fh:
                sha = hashlib.file_digest(fh, "sha256").hexdigest()
            log.info("uploading a temporary copy of %s", path.name)
            # Named in mediasync's old form (no instance id) so a copy left by a crash
            # is recognisably ours: `files purge` deletes it. The daemon's refresh does
            # not (an old-form name may be another instance's): else it expires in 48 h.
            file = await client.upload(path, mime, ownership.display_name(sha, path.name))
            try:
                file = await client.wait_processed(file.name)
                if file.state == "FAILED":
                    raise ApiError(400, "FAILED_PRECONDITION", "the service could not process "
                                   f"the file: {file.error_message or 'FAILED'}")
                gen = await client.generate(model, file_uri=file.uri or "", mime_type=mime,
                                            prompt=question)
            finally:
                try:
                    await client.delete_file(file.name)
                except ApiError as e:
                    if not e.file_gone:
                        log.warning("could not delete the temporary copy %s (%s); "
                                    "`mediasync files delete %s` will", file.name, e, file.name)
    if gen.blocked:
        return None, gen.block_reason or gen.finish_reason or "no reason given"
    if gen.text is None:
        return None, f"no text in the answer (finish reason {gen.finish_reason or 'none'})"
    return gen.text, None

