"""Batch jobs: gather pending outputs, submit them as one job, poll it, keep its answers.

The producer asks :meth:`Batcher.route` before an interactive call. Under ``[batch]``
"auto" or "always" a pending output is gathered (held, nothing recorded); when the
engine runs out of work, :meth:`Batcher.flush` sends each group (one model and one set
of settings) that is big enough as one job, and releases the rest to interactive
generation (a lone new file). A job is durable state (rules/batching.py): its intent is
recorded before the create, the create is never retried blindly (a lost answer is
adopted from ``batches.list`` by the key in its display name), a restart resumes
polling and never resubmits. Answers are kept by the output until the producer writes
them through the interactive path (atomic, the owner's edits kept, XMP merged). A job
that ends without results, or stays open past ``max_wait``, sends its outputs to
interactive generation, never to another job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mediasync.config import BatchConfig
from mediasync.engine.context import Context, Requeue
from mediasync.engine.halt import Halt
from mediasync.gemini import ApiError, Generation, TransportError, parse_results
from mediasync.gemini.batches import JSONL_MIME, BatchJob
from mediasync.rules import batching, failures
from mediasync.rules.batching import ItemRow, JobRow
from mediasync.rules.failures import classify
from mediasync.rules.rows import ContentRow, Desired

log = logging.getLogger("mediasync")


class Hold:
    """The output waits for a batch job (gathered, or in an open job)."""

    def __init__(self, why: str) -> None:
        self.why = why


@dataclasses.dataclass
class _Pending:
    path: str
    want: Desired
    sha: str
    mime: str
    prompt: str
    config: dict[str, Any] | None
    system: str | None
    answer_key: str | None = None


class Batcher:
    def __init__(
        self,
        ctx: Context,
        queue: Requeue,
        *,
        instance: str,
        halt: Halt,
        renew: Callable[[str], Awaitable[ContentRow | None]],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``instance``: this state directory's id (in our jobs' display names);
        ``halt``: the engine's halt (a key refused while a job is open stops the polls;
        the job stays recorded and is polled again once the key works);
        ``renew(sha)``: a fresh copy of a content now (one that would not outlive a job)."""
        self._ctx = ctx
        self._queue = queue
        self._instance = instance
        self._halt = halt
        self._renew = renew
        self._sleep = sleep
        # One group per model, settings and the folder's [batch]: each becomes one job.
        self._groups: dict[tuple[str, ...], tuple[BatchConfig, list[_Pending]]] = {}
        self._released: set[tuple[str, str, str]] = set()  # (path, suffix, sha) this run
        self._wake = asyncio.Event()
        self._advancing: set[str] = set()  # keys of the jobs being created or polled

    def now(self) -> float:
        return self._ctx.clock()

    # -- the producer's question -------------------------------------------------
    @property
    def gathered(self) -> int:
        return sum(len(g) for _, g in self._groups.values())

    def route(self, path: str, want: Desired, sha: str, mime: str, prompt: str,
              config: dict[str, Any] | None, system: str | None, answer_key: str | None = None
              ) -> Hold | Generation | ApiError | None:
        """How the output gets its answer: a :class:`Hold` (wait for a job), a batch's
        answer or error line, or None (ask interactively now). ``answer_key``: what
        decides the answer now (engine/answers.py), the knobs too."""
        store = self._ctx.store
        item = store.item_for(path, want.suffix)
        if item is not None and item.state not in (batching.DROPPED, batching.INTERACTIVE):
            same = (item.sha256, item.prompt_hash, item.model) == (
                sha, want.prompt_hash, want.model) and (
                item.answer_key is None or answer_key is None or item.answer_key == answer_key)
            if not same:
                # The file, prompt or knobs changed since its job was made (a cut answer's
                # limit raised): that answer is not this request's; it is dropped.
                store.set_item(item, batching.DROPPED)
                item = None
            elif item.state == batching.WAITING:
                return Hold(f"in batch job {item.job_key}")
            elif item.state == batching.ANSWERED and item.answer:
                return Generation.from_json(json.loads(item.answer))
            elif item.state == batching.ERROR:
                # Judged once by the failure vocabulary; a retry goes interactive.
                store.set_item(item, batching.INTERACTIVE)
                err = json.loads(item.error or "{}")
                return ApiError(int(err.get("code") or 0), str(err.get("status") or "UNKNOWN"),
                                str(err.get("message") or "batch error"), err.get("details"))
        interactive = item is not None and item.state == batching.INTERACTIVE and (
            item.sha256, item.prompt_hash) == (sha, want.prompt_hash)
        settings = self._ctx.config.batch_for(Path(path))
        released = (path, want.suffix, sha) in self._released
        if not batching.goes_by_batch(settings.mode, released, interactive):
            return None
        key = _group(want.model, config, system, settings)
        _, group = self._groups.setdefault(key, (settings, []))
        if not any(p.path == path and p.want.suffix == want.suffix for p in group):
            group.append(_Pending(path, want, sha, mime, prompt, config, system, answer_key))
        return Hold("gathered for a batch job")

    def give_up(self, path: str, suffix: str) -> None:
        """An answered item's answer did not fit its schema: go interactive."""
        item = self._ctx.store.item_for(path, suffix)
        if item is not None:
            self._ctx.store.set_item(item, batching.INTERACTIVE)

    # -- gathering → jobs ----------------------------------------------------------
    async def flush(self) -> None:
        """The engine ran out of work: each group big enough goes as one job, the rest
        is released to interactive generation."""
        groups, self._groups = self._groups, {}
        for settings, pending in groups.values():
            if batching.submit(settings.mode, len(pending), settings.min_outputs):
                try:
                    await self._submit(pending, settings)
                    continue
                except (ApiError, OSError) as e:
                    log.warning("could not start a batch job of %d outputs: %s; they go "
                                "interactive", len(pending), e)
            for p in pending:
                self._released.add((p.path, p.want.suffix, p.sha))
                self._queue.schedule(p.path, self._ctx.monotonic())

    async def _submit(self, pending: list[_Pending], settings: BatchConfig) -> None:
        ctx, store = self._ctx, self._ctx.store
        now = ctx.clock()
        lines, items = [], []
        keys: dict[str, str] = {}  # request → its key: one line for outputs asking alike
        key = secrets.token_hex(6)
        for p in pending:
            content = store.get_content(p.sha)
            if content is not None and batching.needs_renewal(content.expires_at, now,
                                                                settings.max_wait):
                content = await self._renew(p.sha)
            if content is None or not content.uri:
                self._released.add((p.path, p.want.suffix, p.sha))
                self._queue.schedule(p.path, ctx.monotonic())
                continue
            body = ctx.client.generate_request(content.uri, p.mime, p.prompt, p.config, p.system)
            text = json.dumps(body, ensure_ascii=False, sort_keys=True)
            request_key = keys.get(text)
            if request_key is None:  # .srt and .vtt of one prompt share one answer
                request_key = keys[text] = f"o{len(keys)}"
                lines.append(json.dumps({"key": request_key, "request": body},
                                        ensure_ascii=False))
            items.append(ItemRow(key, request_key, p.path, p.want.suffix, p.sha,
                                 p.want.prompt_hash, p.want.model, content.uri,
                                 batching.WAITING, answer_key=p.answer_key))
        if not items:
            return
        model = pending[0].want.model
        source = self._input_path(key)
        await asyncio.to_thread(_write_lines, source, lines)
        # The intent, before any call: a crash from here on finds the job again.
        job = JobRow(key, model, batching.CREATING, now, settings.max_wait, next_at=now)
        store.put_job(job, items)
        log.info("batch job %s: %d outputs for %s", key, len(items), model)
        await self._advance(job)

    def _input_path(self, key: str) -> Path:
        # Beside the state database (MEDIASYNC_STATE_DIR may move it from the config's).
        return Path(self._ctx.store.path).parent / "batches" / f"{key}.jsonl"

    # -- creating and polling --------------------------------------------------------
    async def tick(self) -> float | None:
        """Create or poll each job that is due; seconds until the next one is (None: no
        open job)."""
        soonest: float | None = None
        if self._halt.why:
            return None  # no call goes out while the key is refused
        for job in self._ctx.store.jobs():
            if job.next_at is None or job.next_at <= self._ctx.clock():
                await self._advance(job)
                job = next((j for j in self._ctx.store.jobs() if j.key == job.key), None)
                if job is None:
                    continue
            if job.next_at is not None:
                wait = max(0.0, job.next_at - self._ctx.clock())
                soonest = wait if soonest is None else min(soonest, wait)
        return soonest

    async def run(self) -> None:
        """The daemon's loop: tick whenever a job is due (woken by a new job)."""
        while True:
            try:
                wait = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive any one job's surprise
                log.exception("batch jobs: unexpected error; will look again")
                wait = batching.POLL_CAP
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), batching.POLL_CAP if wait is None
                                       else max(0.5, wait))
            except TimeoutError:
                pass

    async def wait(self, progress: Callable[[list[JobRow]], None] | None = None) -> None:
        """Until every job has ended (``sync`` under "always"), telling ``progress``."""
        while True:
            wait = await self.tick()
            jobs = self._ctx.store.jobs()
            if not jobs or self._halt.why:
                return
            if progress is not None:
                progress(jobs)
            await self._sleep(max(0.2, wait if wait is not None else batching.POLL_FIRST))

    async def _advance(self, job: JobRow) -> None:
        # One look at a job at a time: `flush` creates its jobs while the daemon's tick
        # may find the same job due; two looks at a job being created made it twice.
        if job.key in self._advancing:
            return
        self._advancing.add(job.key)
        try:
            await self._look(job)
        finally:
            self._advancing.discard(job.key)

    async def _look(self, job: JobRow) -> None:
        try:
            if job.state == batching.CREATING:
                await self._create(job)
            else:
                await self._poll(job)
        except ApiError as e:
            if classify(e) == "auth":
                self._halt(e)  # the key changed while the job is open: kept, polled later
                return
            # A failed poll or download: transient, tried again later.
            now = self._ctx.clock()
            self._update(job, next_at=now + batching.poll_delay(job.attempts),
                         attempts=job.attempts + 1, message=str(e))
            log.warning("batch job %s: %s; will try again", job.name or job.key, e)

    async def _create(self, job: JobRow) -> None:
        ctx, client = self._ctx, self._ctx.client
        display = batching.display_name(self._instance, job.key)
        if batching.overdue(job.created_at, ctx.clock(), job.max_wait) and not job.attempts:
            self._end(job, batching.INTERACTIVE, "not created within max_wait")
            return
        if job.attempts:
            # A create was sent before: its answer may have been lost, or we crashed
            # before recording it. Adopt what the service has, never submit twice.
            for found in await client.list_batches():
                if batching.key_of(found.display_name, self._instance) == job.key:
                    log.info("batch job %s: adopted %s (its create answer was lost)",
                             job.key, found.name)
                    self._opened(job, found)
                    return
            if batching.overdue(job.created_at, ctx.clock(), job.max_wait):
                # Refused until max_wait, and not in the listing: never made.
                self._end(job, batching.INTERACTIVE, "not created within max_wait")
                return
        source = self._input_path(job.key)
        if job.input_file is None:
            if not source.exists():
                self._end(job, batching.DROPPED, "its input was lost before any create")
                return
            uploaded = await client.upload(source, JSONL_MIME, display_name=display)
            job = self._update(job, input_file=uploaded.name)
        # Counted before the call: a crash after it lists before creating again.
        job = self._update(job, attempts=job.attempts + 1)
        try:
            created = await client.create_batch(job.model, display, file_name=job.input_file)
        except TransportError as e:
            # The answer is lost: the job may exist. The next look lists first.
            self._update(job, next_at=ctx.clock() + batching.POLL_FIRST, message=str(e))
            log.warning("batch job %s: create answer lost (%s); will look for it", job.key, e)
            return
        except ApiError as e:
            if classify(e) == "auth":
                raise
            v = failures.judge_api(e, job.attempts, ctx.clock(), 0.5)
            if e.model_missing:
                # No batch jobs for this model (or none at all: then the interactive
                # calls hold it, as for any model the service does not serve).
                self._end(job, batching.INTERACTIVE, f"refused: {e}")
                return
            if e.file_gone and job.input_file:
                job = self._update(job, input_file=None)  # the input lapsed: upload again
            elif not v.transient:
                self._end(job, batching.INTERACTIVE, f"refused: {e}")
                return
            # 429 (no RetryInfo on a batch create), 5xx: the job was not made.
            retry = ctx.clock() + batching.create_delay(job.attempts)
            self._update(job, next_at=max(retry, v.retry_at or 0.0), message=str(e))
            log.warning("batch job %s: create refused (%s); will try again", job.key, e)
            return
        self._opened(job, created)

    def _opened(self, job: JobRow, found: BatchJob) -> None:
        now = self._ctx.clock()
        self._update(job, state=batching.OPEN, name=found.name, service_state=found.state,
                     stats=json.dumps(found.stats), attempts=0,
                     next_at=now + batching.poll_delay(0), message=None)
        self._wake.set()

    async def _poll(self, job: JobRow) -> None:
        ctx, client = self._ctx, self._ctx.client
        now = ctx.clock()
        try:
            found = await client.get_batch(job.name or "")
        except ApiError as e:
            if e.code == 404 or (e.code == 403 and not e.key_invalid):
                # Deleted by another tool, or another project's key: its answers are
                # gone for us; nothing is lost, the outputs go interactive.
                self._end(job, batching.INTERACTIVE, f"the job is gone ({e.code})")
                return
            raise
        job = self._update(job, service_state=found.state, stats=json.dumps(found.stats))
        what = batching.outcome(found.state, found.ended, bool(found.responses_file))
        if what == "results":
            await self._results(job, found)
            return
        if what == "interactive":
            self._end(job, batching.INTERACTIVE, f"ended {found.state or 'without a state'}")
            return
        if batching.overdue(job.created_at, now, job.max_wait):
            try:
                await client.cancel_batch(job.name or "")
            except ApiError as e:
                log.warning("batch job %s: cancel failed: %s", job.name, e)
            self._end(job, batching.INTERACTIVE, "open past max_wait: cancelled")
            return
        self._update(job, next_at=now + batching.poll_delay(job.attempts + 1),
                     attempts=job.attempts + 1)

    async def _results(self, job: JobRow, found: BatchJob) -> None:
        ctx, store = self._ctx, self._ctx.store
        now = ctx.clock()
        if not found.responses_file:
            # Paid for: the results file may name itself a little after SUCCEEDED. Looked
            # for again while the job's own life (48 h) lasts, not max_wait's.
            if now - job.created_at < batching.JOB_LIFE:
                self._update(job, next_at=now + batching.poll_delay(job.attempts + 1),
                             attempts=job.attempts + 1, message="no results file yet")
                return
            self._end(job, batching.INTERACTIVE, "succeeded without a results file")
            return
        try:
            data = await ctx.client.download(found.responses_file)
        except ApiError as e:
            if classify(e) == "auth":
                raise
            if e.file_gone or now - job.created_at >= batching.JOB_LIFE:
                # The results are gone (or never came): their outputs go interactive.
                self._end(job, batching.INTERACTIVE, f"results not downloadable: {e}")
                return
            raise  # transient: downloaded at the next look, max_wait or not
        results = parse_results(data)
        answered = errors = 0
        billed: set[str] = set()
        for item in store.job_items(job.key):
            if item.state != batching.WAITING or item.request_key in billed:
                continue
            billed.add(item.request_key)
            gen = results.answers.get(item.request_key)
            err = results.errors.get(item.request_key)
            if gen is not None:
                answered += 1
                store.set_items(job.key, batching.ANSWERED, [item.request_key],
                                answer=json.dumps(gen.raw))
                if ctx.client.on_usage is not None:  # billed once, at the batch rate
                    ctx.client.on_usage(gen.model_version or item.model, gen.usage, "batch")
            elif err is not None:
                errors += 1
                store.set_items(job.key, batching.ERROR, [item.request_key], error=json.dumps(
                    {"code": err.code, "status": err.status, "message": err.message}))
        missing = len([i for i in store.job_items(job.key) if i.state == batching.WAITING])
        note = f"{(found.state or 'done').lower()}: {answered} answered, {errors} errors"
        if missing or results.unreadable:
            note += f", {missing} without a readable answer (interactive)"
        self._end(job, batching.INTERACTIVE, note)

    def _end(self, job: JobRow, items_to: str, message: str) -> None:
        """The job is over: its still-waiting items go ``items_to``, every path is looked
        at again (answers are written, others generated interactively)."""
        store = self._ctx.store
        # Items first: a crash between the two ends the job again on the next look.
        store.set_items(job.key, items_to)
        self._update(job, state=batching.ENDED, next_at=None, message=message)
        log.info("batch job %s: %s", job.name or job.key, message)
        for path in {i.path for i in store.job_items(job.key)}:
            self._queue.mark_dirty(path, event=False)
        self._input_path(job.key).unlink(missing_ok=True)
        if job.input_file:
            # Deleted with the other remote files of ours to delete, retried until gone
            # (a task of its own raced a `sync`'s closing client, and was not retried).
            store.doom(job.input_file, "batch input", self._ctx.clock())

    def _update(self, job: JobRow, **values: Any) -> JobRow:
        job = dataclasses.replace(job, **values)
        self._ctx.store.put_job(job)
        return job


def _group(model: str, config: dict[str, Any] | None, system: str | None,
           settings: BatchConfig) -> tuple[str, ...]:
    """One job per model and settings (and the folder's batch settings)."""
    return (model, json.dumps(config, sort_keys=True), system or "", settings.mode,
            str(settings.min_outputs), str(settings.max_wait))


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
