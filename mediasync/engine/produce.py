"""Outputs of one file: decide whether a sidecar needs generating, ask the model,
write the answer atomically and record each outcome (failures judged by
failures.py, so a transient cause is retried and never made permanent).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePath

from mediasync.config import KnobRequest, Knobs
from mediasync.engine.batcher import Batcher, Hold
from mediasync.engine.context import UNAVAILABLE_RETRY, Context, Requeue
from mediasync.engine.halt import Halt
from mediasync.gemini import ApiError, ConfigPaused, Usage
from mediasync.local import sidecar
from mediasync.local.folderio import FolderUnavailable
from mediasync.local.scan import NotRegular, local_facts
from mediasync.outputs import formats, structured
from mediasync.rules import failures, states, steps
from mediasync.rules.failures import classify
from mediasync.rules.rows import ContentRow, Desired, Outcome, OutputRow, PathRow

log = logging.getLogger("mediasync")


@dataclass(frozen=True)
class Job:
    """One output of one file being generated."""

    path: str
    key: str  # its watched folder: every file call goes through that folder's threads
    rel: PurePath
    sha: str
    want: Desired
    row: OutputRow | None
    on_disk: str | None  # hash of our bytes on disk, when they are ours
    attempts: int
    served: tuple[str | None, str | None] = (None, None)  # model and tier of the answer


class Producer:
    def __init__(
        self,
        ctx: Context,
        queue: Requeue,
        halt: Halt,
        *,
        exists: Callable[[str, str], Awaitable[bool]],
        jitter: Callable[[], float],
        forget_copy: Callable[[str], None],
        thinks: Callable[[str], bool | None] = lambda model: None,
        batch: Batcher | None = None,
    ) -> None:
        """``exists(folder, path)``: whether a sidecar is there, a folder that is away
        counting as holding it (Identifier.exists); ``jitter``: a draw in [0, 1) for
        backoffs; ``forget_copy(sha)``: the remote copy is gone (Mirror.forget_copy);
        ``thinks(model)``: its models.get answer's ``thinking`` flag, when known
        (ModelWatch.thinks); ``batch``: where outputs may go by the Batch API."""
        self._ctx = ctx
        self._queue = queue
        self._halt = halt
        self._exists = exists
        self._jitter = jitter
        self._forget_copy = forget_copy
        self._thinks = thinks
        self._batch = batch
        self._said: set[str] = set()  # knob notes logged once per run
        # Answers shared within one pass of a content (.srt and .vtt of one request).
        self._answers: dict[tuple[str, ...], structured.Answer] = {}

    def forget_answers(self, sha: str) -> None:
        """Answers are shared within one pass only: a deleted sidecar asks afresh."""
        for key in [k for k in self._answers if k[0] == sha]:
            del self._answers[key]

    async def output(self, path: str, rel: PurePath, sha: str, want: Desired,
                     ready: Callable[[], Awaitable[ContentRow | None]] | None = None) -> None:
        """Bring one output up to date. ``ready`` makes the remote copy when a generation
        needs it (keep_alive = "on_use"); without it the caller made it already."""
        row = self._ctx.store.get_outputs(path).get(want.suffix)
        folder = self._ctx.config.folder_for(Path(path))
        key = str(folder.path) if folder else os.path.dirname(path)
        if (
            row is not None
            and row.outcome in (Outcome.WRITTEN, Outcome.KEPT_EDIT)
            and states.is_current(row, want, sha)
            and await self._exists(key, want.sidecar)
        ):
            # Nothing would be written either way; hashing the sidecar to tell
            # "ours" from "edited" waits until a write is wanted.
            return
        target = Path(want.sidecar)
        try:
            if want.format == "xmp":
                state, on_disk = await self._ctx.fs.call(key, formats.xmp_state, target, row)
            else:
                state, on_disk = await self._ctx.fs.call(key, _sidecar_state, target, row)
        except FolderUnavailable:
            self._queue.later(path, self._ctx.clock() + UNAVAILABLE_RETRY)
            return
        except OSError as e:
            # A sidecar name too long for the file system, permissions…: said plainly,
            # tried again later (a rename or a fix by the owner heals it).
            self._cannot_look(path, rel, sha, want, row, target, e)
            return
        step = steps.output_step(row, want, sha, state, self._ctx.clock())
        if step == "skip" and row is not None and row.outcome == Outcome.BLOCKED and (
                formats.knobs_changed_since(row.message, self._knobs_mark(path, want))):
            step = "generate"  # out of tokens before; the owner changed the knobs since
        if step == "skip":
            return
        if step == "wait":
            self._queue.later(path, row.retry_at if row else None)
            return
        if step == "keep_edit":
            owner = self._ctx.store.sidecar_owner(want.sidecar, path)
            message = (f"not written: {target.name} is {os.path.basename(owner)}'s (files "
                       "named alike share stem-named sidecars)" if owner
                       else "kept the owner's edit")
            self._record(path, sha, want, row, outcome=Outcome.KEPT_EDIT, written_hash=on_disk,
                         message=message)
            log.info("%s: %s", rel, message)
            return
        if step == "confirm":
            # Written just before a crash, recorded as pending: it is current.
            self._record(path, sha, want, row, outcome=Outcome.WRITTEN, written_hash=on_disk)
            return
        await self._generate(path, key, rel, sha, want, row, on_disk, ready)

    async def _generate(
        self, path: str, key: str, rel: PurePath, sha: str, want: Desired,
        row: OutputRow | None, on_disk: str | None,
        ready: Callable[[], Awaitable[ContentRow | None]] | None,
    ) -> None:
        job = Job(path, key, rel, sha, want, row, on_disk,
                   (row.attempts if row and row.outcome == Outcome.FAILED else 0) + 1)
        budgets = self._ctx.client.budgets
        if budgets is not None and budgets.holding(f"model:{want.model}"):
            return  # held for the config: no copy made for it, no call (its end rescans)
        if want.format == "xmp" and not await self._xmp_takes_it(job):
            return
        if ready is not None and await ready() is None:
            return  # no copy now: the reason is recorded on the content
        asked = await self._answer(job)
        if asked is None:
            return
        answer, req = asked
        gen, usage = answer.generation, answer.usage
        job = dataclasses.replace(job, served=(gen.model_version, gen.service_tier))
        if gen.blocked or gen.text is None:
            reason = gen.block_reason or gen.finish_reason or "no text"
            message = f"the service gave no answer ({reason})"
            if reason == "MAX_TOKENS":
                message = formats.out_of_tokens(self._knobs_mark(path, want))
            self._record(path, sha, want, row, outcome=Outcome.BLOCKED, written_hash=on_disk,
                         message=message, usage=usage)
            told = message if reason == "MAX_TOKENS" else (
                f"the service blocked the answer ({reason})")
            log.warning("%s: no %s: %s", rel, want.suffix, told)
            return
        try:
            rendered = await self._ctx.fs.call(job.key, formats.render, want, gen.text,
                                                 answer.value, req, on_disk)
        except FolderUnavailable:
            self._unavailable(job)
            return
        except formats.Refused as e:
            # A sidecar we may not touch (not XMP, a DTD): its owner can fix it.
            log.error("%s: %s", rel, e)
            self._retry(job, str(e), self._backoff(job), usage)
            return
        if rendered.note:
            log.info("%s: %s", Path(want.sidecar).name, rendered.note)
        await self.write(dataclasses.replace(job, on_disk=rendered.base), rendered.text, usage)

    async def _xmp_takes_it(self, job: Job) -> bool:
        """Whether the XMP sidecar there can take the answer; asked before paying for one."""
        try:
            await self._ctx.fs.call(job.key, formats.check_xmp, job.want, Path(job.path))
        except FolderUnavailable:
            self._unavailable(job)
            return False
        except formats.Refused as e:
            # Not XMP, or another file's: its owner can fix it; look again later.
            log.error("%s: %s", job.rel, e)
            self._retry(job, str(e), self._backoff(job))
            return False
        return True

    async def _answer(self, job: Job) -> tuple[structured.Answer, formats.Request] | None:
        """The model's answer to the output's request, or None (recorded why)."""
        content = self._ctx.store.get_content(job.sha)
        if content is None or not content.uri:
            return None
        knobs = self._knobs(job.path, job.want)
        try:
            # Before taking a generate slot: a folder that stops answering holds none.
            req = await self._ctx.fs.call(job.key, formats.prepare, job.want, job.path,
                                            job.rel, content.mime, knobs.system_instruction)
        except FolderUnavailable:
            self._unavailable(job)
            return None
        if self._batch is not None:
            routed = self._by_batch(job, req, content, knobs)
            if routed is not False:
                return routed
        async with self._ctx.generate_slots:
            content = self._ctx.store.get_content(job.sha)  # renewed while waiting, maybe
            if content is None or not content.uri:
                return None
            try:
                answer = await self._ask(job.want, job.sha, req, content.uri, content.mime, knobs)
                return answer, req
            except structured.InvalidAnswer as e:
                # Asked twice already; a later try may do better (transient).
                log.error("%s: %s: invalid answer twice: %s", job.rel, job.want.suffix, e.reason)
                self._retry(job, f"invalid answer: {e.reason}", self._backoff(job), e.usage)
            except ConfigPaused as e:
                # The model (or tier) is held for the config: said once by the budgets,
                # shown once by `status`; nothing is recorded against this file, and the
                # hold's end (a reload, the model's return) looks at every path again.
                log.debug("%s: %s waits: %s", job.rel, job.want.suffix, e.message)
            except ApiError as e:
                self.failed(job.path, job.rel, job.sha, job.want, job.row, job.on_disk, e,
                            job.attempts)
        return None

    def _by_batch(self, job: Job, req: formats.Request, content: ContentRow, knobs: Knobs
                  ) -> tuple[structured.Answer, formats.Request] | None | bool:
        """A batch's answer, None (the output waits for a job, or its error line was
        recorded), or False: ask interactively."""
        assert self._batch is not None
        request = self._request(knobs, job.want.model)
        config = {**request.generation_config,
                  **(structured.generation_config(req.schema) or {})} or None
        routed = self._batch.route(job.path, job.want, job.sha, content.mime, req.prompt,
                                   config, req.system)
        if routed is None:
            return False
        if isinstance(routed, Hold):
            return None
        if isinstance(routed, ApiError):  # the job's line for it: judged as any answer
            self.failed(job.path, job.rel, job.sha, job.want, job.row, job.on_disk, routed,
                        job.attempts)
            return None
        gen = dataclasses.replace(routed, service_tier="batch")
        value = None
        if req.schema is not None and not gen.blocked and gen.text is not None:
            try:
                value = structured.parse(gen.text, req.schema)
            except ValueError as e:
                log.info("%s: %s: the batch answer is invalid (%s); asking again",
                         job.rel, job.want.suffix, e)
                self._batch.give_up(job.path, job.want.suffix)
                return False
        return structured.Answer(gen, value, gen.usage), req

    def _knobs(self, path: str, want: Desired) -> Knobs:
        return self._ctx.config.knobs_for(Path(path), want.spec)

    def _request(self, knobs: Knobs, model: str) -> KnobRequest:
        """The knobs as ``model``'s family takes them; what it cannot do, said once."""
        request = knobs.request(model, self._thinks(model))
        for note in request.notes:
            if note not in self._said:
                self._said.add(note)
                log.warning("%s", note)
        return request

    async def write(self, job: Job, text: str, usage: Usage) -> None:
        """Write the sidecar atomically, unless the file moved or its owner edited it."""
        path, sha, want, row, on_disk = job.path, job.sha, job.want, job.row, job.on_disk
        name = Path(want.sidecar).name
        try:
            moved = await self._ctx.fs.call(job.key, _moved, path, self._ctx.store.get_path(path))
        except FolderUnavailable:
            self._unavailable(job)
            return
        if moved:
            # Renamed, deleted or replaced while the answer was on its way: a sidecar
            # here would sit beside nothing. The rename/delete logic takes over.
            log.info("%s moved or changed while its %s was generated; not writing it",
                     job.rel, want.suffix)
            self._queue.schedule(path, self._ctx.monotonic())
            return
        # Record what we are about to write, so a crash between the write and the
        # record still recognises the file as ours.
        self._record(path, sha, want, row, outcome=Outcome.WRITING, written_hash=on_disk,
                     pending=sidecar.text_hash(sidecar.as_written(text)),
                     usage=usage, served=job.served)
        try:
            written = await self._ctx.fs.call(job.key, _write_sidecar, Path(want.sidecar),
                                                text, on_disk)
        except FolderUnavailable:
            # Whether the rename happened is unknown: the pending record tells on the
            # next look (confirm if our bytes are there, else generate).
            self._unavailable(job)
            return
        except OSError as e:
            # Disk full, folder read-only for a while: the owner can fix it; try again.
            v = failures.judge_os(e, job.attempts, self._ctx.clock(), self._jitter())
            log.error("%s: cannot write %s: %s; will try again", job.rel, name, v.reason)
            self._retry(job, f"cannot write {name}: {v.reason}", v.retry_at, usage)
            return
        if written is None and want.format == "xmp":
            # Another tool wrote the sidecar while we asked: merge into its version soon.
            self._retry(job, "the sidecar changed while generating; merging again",
                        self._ctx.clock() + 1.0, usage)
        elif written is None:
            self._record(path, sha, want, row, outcome=Outcome.KEPT_EDIT, written_hash=on_disk,
                         message="kept the owner's edit", usage=usage)
            log.info("kept the owner's edit of %s", name)
        else:
            self._record(path, sha, want, row, outcome=Outcome.WRITTEN, written_hash=written,
                         usage=usage, served=job.served)
            log.info("wrote %s (%d tokens)", name, usage.total_tokens)

    def _knobs_mark(self, path: str, want: Desired) -> str:
        knobs = self._knobs(path, want)
        return formats.knobs_fingerprint(knobs.generation_config(want.model,
                                                                 self._thinks(want.model)))

    def _unavailable(self, job: Job) -> None:
        """The folder stopped answering: look again when it may answer."""
        log.debug("%s: its folder does not answer; %s waits", job.rel, job.want.suffix)
        self._queue.later(job.path, self._ctx.clock() + UNAVAILABLE_RETRY)

    def _backoff(self, job: Job) -> float:
        return self._ctx.clock() + failures.backoff(job.attempts, self._jitter())

    def _cannot_look(self, path: str, rel: PurePath, sha: str, want: Desired,
                     row: OutputRow | None, target: Path, error: OSError) -> None:
        attempts = (row.attempts if row and row.outcome == Outcome.FAILED else 0) + 1
        v = failures.judge_os(error, attempts, self._ctx.clock(), self._jitter())
        message = f"cannot use {target.name}: {v.reason}"
        self._record(path, sha, want, row, outcome=Outcome.FAILED, written_hash=None,
                     message=message, retry_at=v.retry_at, attempts=attempts)
        self._queue.note(path, f"sidecar {want.suffix}", "%s: %s", rel, message)
        self._queue.later(path, v.retry_at)

    def _retry(self, job: Job, message: str, retry_at: float | None,
               usage: Usage | None = None) -> None:
        """Record a transient failure and look again at ``retry_at``."""
        self._record(job.path, job.sha, job.want, job.row, outcome=Outcome.FAILED,
                     written_hash=job.on_disk, message=message, retry_at=retry_at,
                     attempts=job.attempts, usage=usage)
        self._queue.later(job.path, retry_at)

    def failed(
        self, path: str, rel: PurePath, sha: str, want: Desired, row: OutputRow | None,
        on_disk: str | None, error: ApiError, attempts: int,
    ) -> None:
        v = failures.judge_api(error, attempts, self._ctx.clock(), self._jitter())
        if v.kind == "config":
            self._halt(error)
            return
        gone = classify(error) == "gone"
        if gone:
            self._forget_copy(sha)
        if not v.counts:
            attempts -= 1  # the day's quota or the owner's cap: not this file's failure
        self._record(path, sha, want, row, outcome=Outcome.FAILED, written_hash=on_disk,
                     message=str(error), retry_at=v.retry_at, attempts=attempts)
        if not v.counts:
            log.debug("%s: %s waits: %s", rel, want.suffix, error)
        elif v.transient:
            log.warning("%s: %s failed, will try again: %s", rel, want.suffix, error)
        else:
            log.error("%s: %s failed: %s", rel, want.suffix, error)
        if gone and not self._ctx.once:
            self._queue.schedule(path, self._ctx.monotonic())
        elif error.file_not_active and v.retry_at is not None:
            # Processing ends within seconds: look again then, in `sync` too.
            wait = max(0.0, v.retry_at - self._ctx.clock())
            self._queue.schedule(path, self._ctx.monotonic() + wait)
        else:
            self._queue.later(path, v.retry_at)

    async def _ask(self, want: Desired, sha: str, req: formats.Request, uri: str,
                   mime: str, knobs: Knobs) -> structured.Answer:
        """One answer per content and request: .srt and .vtt of one language share it."""
        request = self._request(knobs, want.model)
        config = request.generation_config
        system = req.system  # chosen and filled in formats.prepare
        key = (sha, want.model, req.prompt, system or "", json.dumps(req.schema, sort_keys=True),
               json.dumps(config, sort_keys=True))
        if key in self._answers:
            # Its tokens were counted with the first output that used it.
            return dataclasses.replace(self._answers[key], usage=Usage())
        answer = await structured.ask(self._ctx.client, want.model, file_uri=uri, mime_type=mime,
                                      prompt=req.prompt, system=system, schema=req.schema,
                                      knobs=config, service_tier=request.service_tier)
        if answer.value is not None:
            if len(self._answers) >= 32:
                self._answers.pop(next(iter(self._answers)))
            self._answers[key] = answer
        return answer

    def _record(
        self,
        path: str,
        sha: str,
        want: Desired,
        row: OutputRow | None,
        *,
        outcome: str,
        written_hash: str | None,
        message: str | None = None,
        pending: str | None = None,
        usage: Usage | None = None,
        retry_at: float | None = None,
        attempts: int = 0,
        served: tuple[str | None, str | None] | None = None,
    ) -> None:
        """``served``: the model and tier of a new answer written now; else the row's
        own (what wrote the sidecar on disk)."""
        model_version, tier = served if served is not None else (
            (row.model_version, row.service_tier) if row else (None, None))
        self._ctx.store.put_output(
            OutputRow(
                path=path,
                suffix=want.suffix,
                sha256=sha,
                prompt_hash=want.prompt_hash,
                model=want.model,
                sidecar=want.sidecar,
                written_hash=written_hash,
                pending_hash=pending,
                outcome=outcome,
                message=message,
                prompt_tokens=usage.prompt_tokens if usage else (row.prompt_tokens if row else 0),
                output_tokens=(
                    usage.candidates_tokens if usage else (row.output_tokens if row else 0)
                ),
                retry_at=retry_at,
                attempts=attempts,
                at=self._ctx.clock(),
                thoughts_tokens=(
                    usage.thoughts_tokens if usage else (row.thoughts_tokens if row else 0)
                ),
                model_version=model_version,
                service_tier=tier,
            )
        )




def _write_sidecar(target: Path, text: str, expected: str | None) -> str | None:
    return sidecar.write_atomic(target, text, expected=expected)


def _moved(path: str, row: PathRow | None) -> bool:
    """The file is no longer the one identified (renamed, deleted, replaced)."""
    try:
        facts = local_facts(path)
    except (OSError, NotRegular):
        return True
    return row is None or (facts.size, facts.mtime_ns, facts.inode) != (
        row.size, row.mtime_ns, row.inode
    )


def _sidecar_state(target: Path, row: OutputRow | None) -> tuple[steps.SidecarState, str | None]:
    """Who owns the sidecar, and the hash of our bytes on disk when they are ours.

    While a write is recorded as pending, only the pending bytes are current; the
    bytes written before are ours but stale (a crash mid-rewrite), never current.
    """
    written = row.written_hash if row else None
    pending = states.pending_hash(row)
    if pending:
        if sidecar.inspect(target, pending) == "ours":
            return "ours", pending
        state = sidecar.inspect(target, written)
        if state == "ours":
            return "stale", written
        return state, None  # not the pending bytes, not our old ones: the owner's
    state = sidecar.inspect(target, written)
    return state, written if state == "ours" else None
