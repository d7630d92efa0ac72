"""`mediasync sync`: one pass (scan, upload, wait for ACTIVE, prompt, write) and a
summary; on a terminal, a self-overwriting progress line while it works."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TextIO

from mediasync.app.logs import setup_logging
from mediasync.commands.common import (
    EXIT_API,
    EXIT_BATCH,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_QUOTA,
    EXIT_USAGE,
    load,
)
from mediasync.config import Config
from mediasync.gemini import Budgets, GeminiClient

if TYPE_CHECKING:
    from mediasync.engine.dispatch import Engine
    from mediasync.store import Store

log = logging.getLogger("mediasync")

HELP = "one pass: upload, prompt, write sidecars; exit 1 if any failed"

Progress = Callable[["Engine"], None]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """-c and --log-level are the parser's."""
    p.add_argument("--no-wait", action="store_true",
                   help="do not wait for batch jobs ([batch]): record them and exit 6")


def main(args: argparse.Namespace) -> int:
    _, config = load(args)
    progress = None
    if sys.stderr.isatty():
        progress = _progress
        setup_logging(args.log_level or config.daemon.log_level,
                      stream=_ClearsProgress(sys.stderr))
    return asyncio.run(sync(config, os.environ, progress=progress,
                            wait=not getattr(args, "no_wait", False)))


async def sync(config: Config, env: Mapping[str, str], *, progress: Progress | None = None,
               wait: bool = True) -> int:
    """One pass: scan, upload, wait for ACTIVE, prompt, write. 0 when all done, else 1."""
    # Imported here: parsing the command line (this module's HELP) need not load the daemon.
    from mediasync.app.instance import InstanceLocked, instance_lock, state_dir
    from mediasync.app.statedir import StateGuard, open_state
    from mediasync.store import is_damage

    directory = state_dir(config, env)
    with instance_lock(directory) as lock:
        damaged: str | None = None
        while True:  # once, unless the database is found damaged during the pass
            store = open_state(directory, damaged=damaged)
            again = damaged is None
            try:
                try:
                    code, damaged = await _pass(config, env, store, progress, again=again,
                                               wait=wait)
                except Exception as e:
                    if not is_damage(e):
                        raise
                    if again:
                        log.error("the state database is damaged: %s", e)
                        code, damaged = None, str(e)
                    else:  # the new one too: a disk going bad; the next run looks again
                        log.error("the state database is damaged again (%s); stopping", e)
                        code = EXIT_FAILED
                # Deleted or replaced during the pass: written back before it is closed.
                stolen = StateGuard(lock, store).check()
            finally:
                store.close()
            if stolen is not None:
                raise InstanceLocked(stolen)
            if code is not None:
                return code


async def _pass(config: Config, env: Mapping[str, str], store: Store, progress: Progress | None,
                *, again: bool, wait: bool) -> tuple[int | None, str | None]:
    """One pass: (the exit code, None), or (None, why) when the database was found
    damaged and ``again`` allows one more pass on a new one. ``wait``: for open batch
    jobs; else they are recorded and the pass exits EXIT_BATCH."""
    from mediasync.app.apiclient import make_client
    from mediasync.engine.dispatch import Engine

    client = make_client(config, env, store=store)
    engine = Engine(config, store, client, once=True)
    try:
        # List the remote side while the disk is walked: both before any step.
        _, found = await asyncio.gather(engine.refresh(), engine.scan())
        log.info("found %d media file(s) in %d folder(s)", found, len(config.folders))
        ticker = None
        if progress is not None:
            ticker = asyncio.create_task(_tick(engine, progress))
        await engine.run(until_idle=True)
        if wait and engine.damaged is None:
            await _collect_batches(engine)
        if engine.damaged is None:
            await engine.sweep()
        if ticker is not None and progress is not None:
            ticker.cancel()
            progress(engine)
            print(file=sys.stderr)  # end the progress line before the summary
        if engine.damaged is not None:
            if again:
                return None, engine.damaged
            log.error("the state database is damaged again (%s); stopping", engine.damaged)
            return EXIT_FAILED, None
        code = _summary(config, store, engine.halted, client.budgets, client)
        if code in (EXIT_OK, EXIT_FAILED) and store.jobs():
            from mediasync.report import batches

            for line in batches.render(batches.open_jobs(store, engine.batcher.now())):
                log.info("%s", line)
            log.info("outputs wait in a batch job: `mediasync sync` again or "
                     "`mediasync run` writes them when it ends")
            return EXIT_BATCH, None
        return code, None
    finally:
        await client.aclose()


async def _collect_batches(engine: Engine) -> None:
    """Wait for open batch jobs, one log line per poll, then write what they answered
    (and generate interactively what they did not)."""
    from mediasync.report import batches

    def told(_jobs: object) -> None:
        for line in batches.render(batches.open_jobs(engine.store, engine.batcher.now())):
            log.info("%s", line)

    for _ in range(3):  # a job's outputs that go interactive are never batched again
        if not engine.store.jobs():
            return
        await engine.batcher.wait(told)
        await engine.run(until_idle=True)


def _summary(config: Config, store: Store, halted: str | None, budgets: Budgets | None,
             client: GeminiClient | None = None) -> int:
    """Log what the pass did and what failed; the exit code."""
    from mediasync.app.apiclient import held_lines, pause_lines
    from mediasync.report import batches, status

    total, skipped, bad = 0, 0, []
    for r in status.each(store, config):  # one at a time: only the unfinished are kept
        total += 1
        if r.state == "skipped":
            skipped += 1
        elif not r.ok:
            bad.append(r)
    if halted:
        log.error("%s", halted)
    log.info("%d of %d file(s) synced", total - len(bad) - skipped, total - skipped)
    if skipped:
        log.info("%d file(s) skipped (symbolic links; `mediasync status` says why)", skipped)
    held = held_lines(budgets)
    waiting = batched = 0
    for r in bad:
        if held and status.SEE_HELD in (r.message or ""):
            waiting += 1  # one line for the model, not one per file
            continue
        if batches.IN_JOB in (r.message or ""):
            batched += 1  # not a failure: its answer is on its way
            continue
        log.error("%s: %s%s", r.path, r.state, f": {r.message}" if r.message else "")
    if batched:
        log.info("%d file(s) wait for a batch job", batched)
    if halted:
        return EXIT_API
    if held:
        # A model the service does not serve (or a tier the key may not use) is the
        # config's fault: exit 2, as for any configuration problem.
        for line in held:
            log.error("%s", line)
        log.error("%d file(s) wait for it", waiting)
        return EXIT_USAGE
    paused = pause_lines(budgets, client)
    if paused and any(r.state == "waiting" for r in bad):
        # Waiting until midnight Pacific is the daemon's job, not a one-shot's.
        for line in paused:
            log.error("stopping: %s; run `mediasync sync` again then, or let "
                      "`mediasync run` wait", line)
        return EXIT_QUOTA
    for line in paused:  # reached, but nothing of this pass waits for it
        log.info("%s", line)
    return EXIT_FAILED if bad else EXIT_OK


async def _tick(engine: Engine, progress: Progress) -> None:
    while True:
        progress(engine)
        await asyncio.sleep(0.5)


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


def _progress(engine: Engine) -> None:
    """One self-overwriting line on a terminal: files and bytes."""
    from mediasync.rules.units import human_bytes

    c = engine.store.counts()
    sys.stderr.write(
        f"\r\033[K{c['mirrored']}/{c['files']} files mirrored "
        f"({human_bytes(c['bytes_mirrored'])}) · {c['uploading']} uploading "
        f"({human_bytes(c['bytes_uploading'])} sent) · {c['sidecars']} sidecars written"
    )
    sys.stderr.flush()
