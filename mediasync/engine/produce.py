"""Outputs of one file: decide whether a sidecar needs generating, ask the model,
write the answer atomically and record each outcome (failures judged by
failures.py, so a transient cause is retried and never made permanent).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePath

from mediasync.config import KnobRequest, Knobs
from mediasync.engine.answers import AnswerBook, answer_key
from mediasync.engine.batcher import Batcher, Hold
from mediasync.engine.context import UNAVAILABLE_RETRY, Context, Requeue
from mediasync.engine.halt import Halt
from mediasync.gemini import ApiError, ConfigPaused, Usage
from mediasync.local import marks, sidecar
from mediasync.local.folderio import FolderUnavailable
from mediasync.local.scan import ChangedWhileHashing, NotRegular, hash_file, local_facts
from mediasync.media import metadata
from mediasync.outputs import formats, ranges, structured
from mediasync.rules import completeness, failures, lengths, states, steps
from mediasync.rules.failures import classify
from mediasync.rules.rows import ContentRow, Desired, LocalFacts, Outcome, OutputRow, PathRow

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
    fresh: bool = False  # ask afresh: no kept answer (the owner deleted our sidecar)
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
        forget_copy: Callable[[str, str | None], bool],
        thinks: Callable[[str], bool | None] = lambda model: None,
        batch: Batcher | None = None,
    ) -> None:
        """``exists(folder, path)``: whether a sidecar is there, a folder that is away
        counting as holding it (Identifier.exists); ``jitter``: a draw in [0, 1) for
        backoffs; ``forget_copy(sha, uri)``: the remote copy at ``uri`` is gone, False when
        another serves by now (Mirror.forget_copy); ``thinks(model)``: its models.get
        answer's ``thinking`` flag, when known (ModelWatch.thinks);
        ``batch``: where outputs may go by the Batch API."""
        self._ctx = ctx
        self._queue = queue
        self._halt = halt
        self._exists = exists
        self._jitter = jitter
        self._forget_copy = forget_copy
        self._thinks = thinks
        self._batch = batch
        self._said: set[str] = set()  # knob notes logged once per run
        # Paid answers by what decides them: the same bytes cost one generation.
        self._book = AnswerBook(ctx.store, ctx.clock)
        self._durations: dict[str, float | None] = {}  # seconds of audio and video, by sha

    async def output(self, path: str, rel: PurePath, sha: str, want: Desired,
                     ready: Callable[[], Awaitable[ContentRow | None]] | None = None) -> None:
        """Bring one output up to date. ``ready`` makes the remote copy when a generation
        needs it (keep_alive = "on_use"); without it the caller made it already."""
        row = self._ctx.store.get_outputs(path).get(want.suffix)
        folder = self._ctx.config.folder_for(Path(path))
        key = str(folder.path) if folder else os.path.dirname(path)
        if row is None:
            row = await self._adopt(key, path, rel, want)
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
        if step == "skip" and row is not None and row.outcome in _MARKED and (
                formats.knobs_changed_since(row.message, self._knobs_mark(path, want))):
            step = "generate"  # out of tokens or cut before; the owner changed the knobs since
        if step == "wait" and row is not None and (row.message or "").startswith(PAUSE_WAIT) and (
                self._ctx.client.paused(want.model) is None):
            # It waited for the day's quota or the owner's cap, which no longer holds
            # (the cap raised or removed: a reload or restart read it again).
            step = "generate"
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
        # Our sidecar, current, deleted by its owner: a re-roll, asked afresh.
        fresh = (state == "missing" and row is not None and row.outcome == Outcome.WRITTEN
                 and states.is_current(row, want, sha))
        await self._generate(path, key, rel, sha, want, row, on_disk, ready, fresh)

    async def _adopt(self, key: str, path: str, rel: PurePath, want: Desired) -> OutputRow | None:
        """No record of this output (a rebuilt database): a sidecar whose mark says
        mediasync wrote these very bytes is ours again, recorded as the answer it
        marks; so it is regenerated when the file, prompt or model differ, and
        left alone (not paid for again) when they do not. An XMP sidecar another
        tool rewrote is too, by what the folder's marks file says was merged."""
        try:
            mark = await self._ctx.fs.call(key, _answer_held, Path(want.sidecar), want.format)
        except (FolderUnavailable, OSError):
            return None  # looked at again with the sidecar itself (output_step)
        if mark is None or mark.source != os.path.basename(path):
            return None  # no mark, other bytes, or another file's (a shared stem)
        row = OutputRow(path=path, suffix=want.suffix, sha256=mark.content,
                        prompt_hash=mark.prompt, model=mark.model, sidecar=want.sidecar,
                        written_hash=mark.sha256, pending_hash=None, outcome=Outcome.WRITTEN,
                        message=None, prompt_tokens=0, output_tokens=0, retry_at=None,
                        attempts=0, at=self._ctx.clock())
        self._ctx.store.put_output(row)
        log.debug("%s: %s is mediasync's by its mark", rel, Path(want.sidecar).name)
        return row

    async def _generate(
        self, path: str, key: str, rel: PurePath, sha: str, want: Desired,
        row: OutputRow | None, on_disk: str | None,
        ready: Callable[[], Awaitable[ContentRow | None]] | None, fresh: bool = False,
    ) -> None:
        job = Job(path, key, rel, sha, want, row, on_disk,
                  (row.attempts if row and row.outcome == Outcome.FAILED else 0) + 1, fresh)
        budgets = self._ctx.client.budgets
        if budgets is not None and budgets.holding(f"model:{want.model}"):
            return  # held for the config: no copy made for it, no call (its end rescans)
        if await self._too_long(job):
            return
        if want.format == "xmp" and not await self._xmp_takes_it(job):
            return
        if ready is not None and await ready() is None:
            return  # no copy now: the reason is recorded on the content
        asked = await self._answer(job)
        if asked is None:
            return
        answer, req, shared = asked
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
        cut = completeness.cut_reason(gen.finish_reason, gen.text)
        if cut is not None:
            # Written, it would look whole; asked again, it would be cut again: an
            # outcome to say, until the owner raises the limit (issue 18, item 5).
            fix = formats.cut_fix(want, req, req.mime.partition("/")[0],
                                  gen.usage.thoughts_tokens)
            message = completeness.cut_message(
                cut, visible=gen.usage.candidates_tokens, thoughts=gen.usage.thoughts_tokens,
                fix=fix)
            self._incomplete(job, (answer.where or "") + message, usage)
            return
        try:
            remembered = None
            if want.format == "xmp":
                # The store's copy, else the folder's: a rebuilt store has none.
                remembered = (self._ctx.store.get_xmp_marks(want.sidecar)
                              or await self._ctx.fs.call(job.key, marks.xmp_marks,
                                                         Path(want.sidecar)))
            rendered = await self._ctx.fs.call(job.key, formats.render, want, gen.text,
                                                 answer.value, req, on_disk, remembered)
        except FolderUnavailable:
            self._unavailable(job)
            return
        except formats.Refused as e:
            # A sidecar we may not touch (not XMP, a DTD): its owner can fix it.
            log.error("%s: %s", rel, e)
            self._retry(job, str(e), self._backoff(job), usage)
            return
        if rendered.incomplete:
            self._incomplete(job, rendered.incomplete, usage)
            return
        if rendered.note:
            log.info("%s: %s", Path(want.sidecar).name, rendered.note)
        note = "; ".join(filter(None, [shared, rendered.note])) or None
        await self.write(dataclasses.replace(job, on_disk=rendered.base), rendered.text, usage,
                         note=note, xmp_marks=rendered.marks)

    def _incomplete(self, job: Job, message: str, usage: Usage) -> None:
        """Record an answer that is not whole: not written, not asked again until the
        file, prompt, model or knobs change (the mark says under which knobs)."""
        marked = f"{message} [knobs {self._knobs_mark(job.path, job.want)}]"
        self._record(job.path, job.sha, job.want, job.row, outcome=Outcome.INCOMPLETE,
                     written_hash=job.on_disk, message=marked, usage=usage)
        log.warning("%s: %s %s", job.rel, job.want.suffix, message)

    async def too_long_for_all(self, path: str, rel: PurePath, sha: str,
                               wants: list[Desired]) -> bool:
        """Before a first copy is made: whether no output of the file can take its
        length (each refusal recorded), so nothing is uploaded for none of them."""
        content = self._ctx.store.get_content(sha)
        if not wants or (content is not None and (
                content.remote_name or content.next_name or content.next_url)):
            return False
        folder = self._ctx.config.folder_for(Path(path))
        key = str(folder.path) if folder else os.path.dirname(path)
        rows = self._ctx.store.get_outputs(path)
        for want in wants:
            row = rows.get(want.suffix)
            job = Job(path, key, rel, sha, want, row, row.written_hash if row else None, 1)
            if not await self._too_long(job):
                return False
        return True

    async def _too_long(self, job: Job) -> bool:
        """Whether one request cannot take the media for this output; recorded as its
        verdict (until the file, prompt, model or ranges change) before anything is paid."""
        row = self._ctx.store.get_path(job.path)
        if row is None or lengths.limit(row.kind) is None:
            return False
        if job.sha not in self._durations:
            try:
                seconds = await self._ctx.fs.call(job.key, metadata.duration, Path(job.path),
                                                  row.mime)
            except FolderUnavailable:
                return False  # the output's own steps say so
            if len(self._durations) >= 4096:
                self._durations.pop(next(iter(self._durations)))
            self._durations[job.sha] = seconds
        want = job.want
        reason = lengths.too_long(row.kind, self._durations[job.sha],
                                  clips=formats.clips(want, row.kind),
                                  can_clip=want.format in formats.JOINED)
        if reason is None:
            return False
        current = job.row is not None and states.is_current(job.row, want, job.sha)
        if not (current and job.row is not None and job.row.outcome == Outcome.FAILED
                and (job.row.message or "").startswith(reason)):
            self._record(job.path, job.sha, want, job.row, outcome=Outcome.FAILED,
                         written_hash=job.on_disk,
                         message=f"{reason} [knobs {self._knobs_mark(job.path, want)}]")
            log.warning("%s: no %s: %s", job.rel, want.suffix, reason)
        return True

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

    async def _answer(
        self, job: Job,
    ) -> tuple[structured.Answer, formats.Request, str | None] | None:
        """The model's answer to the output's request, or None (recorded why); with a
        note when the answer was paid for another file (same bytes and request)."""
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
        want = job.want
        request = self._request(knobs, want.model)
        config = request.generation_config
        length = formats.ranged(want, req, content.mime)
        key = answer_key(job.sha, want.model, req.prompt, req.system, req.schema, config, length)
        if job.fresh:
            self._book.forget(key)
        schema = req.schema
        parse = (lambda text: structured.parse(text, schema)) if schema else (lambda _: None)
        # An answer kept for this request (paid at another path, interactively or by a
        # job) is taken before a batch job would pay for it again.
        if self._batch is not None and not self._book.has(key, parse):
            routed = self._by_batch(job, req, content, knobs, key)
            if routed is not False:
                return routed

        async def ask() -> structured.Answer:
            # A kept answer needs no slot; a paid one waits for its turn.
            async with self._ctx.generate_slots:
                now = self._ctx.store.get_content(job.sha)  # renewed while waiting, maybe
                if now is None or not now.uri:
                    raise _NoCopy
                used.append(now.uri)
                return await self._ask(want, req, now.uri, now.copy_mime, config, length,
                                       request.service_tier)

        used: list[str] = []  # the copy asked (a renewal may replace it meanwhile)

        try:
            answer, paid_by = await self._book.get(key, job.sha, job.path, ask, parse)
        except _NoCopy:
            return None
        except structured.InvalidAnswer as e:
            # Asked twice already; a later try may do better (transient).
            log.error("%s: %s: invalid answer twice: %s", job.rel, want.suffix, e.reason)
            self._retry(job, f"invalid answer: {e.reason}", self._backoff(job), e.usage)
            return None
        except ConfigPaused as e:
            # The model (or tier) is held for the config: said once by the budgets,
            # shown once by `status`; nothing is recorded against this file, and the
            # hold's end (a reload, the model's return) looks at every path again.
            log.debug("%s: %s waits: %s", job.rel, want.suffix, e.message)
            return None
        except ApiError as e:
            self.failed(job.path, job.rel, job.sha, want, job.row, job.on_disk, e,
                        job.attempts, uri=used[-1] if used else content.uri)
            return None
        shared = None
        if paid_by is not None and paid_by != job.path:
            # Named as status names files: relative to this file's folder when inside it.
            shown = (os.path.relpath(paid_by, job.key)
                     if Path(paid_by).is_relative_to(job.key) else paid_by)
            shared = f"the answer paid for {shown} (same bytes and request; paid once)"
        return answer, req, shared

    async def write(self, job: Job, text: str, usage: Usage, note: str | None = None,
                    xmp_marks: str | None = None) -> None:
        """Write the sidecar atomically, unless the file moved or its owner edited it."""
        path, sha, want, row, on_disk = job.path, job.sha, job.want, job.row, job.on_disk
        name = Path(want.sidecar).name
        folder = self._ctx.config.folder_for(Path(path))
        within = str(folder.path) if folder and folder.follow_symlinks else None
        try:
            moved = await self._moved(job, within)
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
            mark = marks.Mark("", sha, want.prompt_hash, want.model, os.path.basename(path))
            written = await self._ctx.fs.call(job.key, _write_sidecar, Path(want.sidecar),
                                                text, on_disk, mark, xmp_marks)
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
            if xmp_marks is not None:  # what is ours in an XMP, should another tool drop it
                self._ctx.store.put_xmp_marks(want.sidecar, xmp_marks, self._ctx.clock())
            self._record(path, sha, want, row, outcome=Outcome.WRITTEN, written_hash=written,
                         usage=usage, message=note, served=job.served)
            log.info("wrote %s (%d tokens)", name, usage.total_tokens)

    async def _moved(self, job: Job, within: str | None = None) -> bool:
        """Whether the file is no longer the one identified (renamed, deleted, other
        bytes). The stat is a cache, the hash the identity: a touch or a copy over
        itself while the answer was on its way keeps the paid answer (issue 18, item 7),
        and the stat cache follows, so nothing is hashed again."""
        recorded = self._ctx.store.get_path(job.path)
        facts = await self._ctx.fs.call(job.key, _stat_if_changed, job.path, recorded, within)
        if facts is None:
            return False
        if recorded is None or not recorded.sha256 or facts.size != recorded.size:
            return True
        try:
            sha = await self._ctx.fs.call(job.key, hash_file, job.path, facts, timeout=None)
        except (OSError, NotRegular, ChangedWhileHashing):
            return True
        if sha != recorded.sha256:
            return True
        self._ctx.store.put_path(dataclasses.replace(
            recorded, size=facts.size, mtime_ns=facts.mtime_ns, inode=facts.inode))
        return False

    def _by_batch(self, job: Job, req: formats.Request, content: ContentRow, knobs: Knobs,
                  key: str) -> tuple[structured.Answer, formats.Request, str | None] | None | bool:
        """A batch's answer (kept under ``key``, its answer key, for the same request
        elsewhere), None (the output waits for a job, or its error line was recorded),
        or False: ask interactively."""
        assert self._batch is not None
        request = self._request(knobs, job.want.model)
        config = {**request.generation_config,
                  **(structured.generation_config(req.schema) or {})} or None
        routed = self._batch.route(job.path, job.want, job.sha, content.copy_mime, req.prompt,
                                   config, req.system, key)
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
        self._book.keep(key, job.sha, job.path, gen)
        return structured.Answer(gen, value, gen.usage), req, None

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

    def _knobs_mark(self, path: str, want: Desired) -> str:
        knobs = self._knobs(path, want)
        config = knobs.generation_config(want.model, self._thinks(want.model))
        if want.spec is not None and want.spec.ranges is not None:
            config = {**config, "ranges": want.spec.ranges}  # asking in parts is a fix too
        return formats.knobs_fingerprint(config)

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
        on_disk: str | None, error: ApiError, attempts: int, *, uri: str | None = None,
    ) -> None:
        v = failures.judge_api(error, attempts, self._ctx.clock(), self._jitter())
        if v.kind == "config":
            self._halt(error)
            return
        gone = classify(error) == "gone"
        # A copy a renewal replaced while this generation used it: ask the new one now.
        replaced = gone and not self._forget_copy(sha, uri)
        message = str(error)
        if not v.counts:
            attempts -= 1  # the day's quota or the owner's cap: not this file's failure
            message = f"{PAUSE_WAIT}{error.message}"  # looked at again if the pause ends early
        self._record(path, sha, want, row, outcome=Outcome.FAILED, written_hash=on_disk,
                     message=message, retry_at=v.retry_at, attempts=attempts)
        if not v.counts:
            log.debug("%s: %s waits: %s", rel, want.suffix, error)
        elif v.transient:
            log.warning("%s: %s failed, will try again: %s", rel, want.suffix, error)
        else:
            log.error("%s: %s failed: %s", rel, want.suffix, error)
        if (gone and not self._ctx.once) or replaced:
            self._queue.schedule(path, self._ctx.monotonic())
        elif error.file_not_active and v.retry_at is not None:
            # Processing ends within seconds: look again then, in `sync` too.
            wait = max(0.0, v.retry_at - self._ctx.clock())
            self._queue.schedule(path, self._ctx.monotonic() + wait)
        else:
            self._queue.later(path, v.retry_at)

    async def _ask(self, want: Desired, req: formats.Request, uri: str, mime: str,
                   config: dict[str, object], length: float | str | None,
                   service_tier: str | None = None) -> structured.Answer:
        """Ask the model: in one request, or in time ranges joined (``length``)."""
        accept = formats.acceptance(want, req)

        async def once(prompt: str, clip: tuple[float, float] | None) -> structured.Answer:
            return await structured.ask(
                self._ctx.client, want.model, file_uri=uri, mime_type=mime, prompt=prompt,
                system=req.system, schema=req.schema, knobs=config, clip=clip,
                service_tier=service_tier, accept=accept if prompt is req.prompt else None)

        if length is None or req.duration is None:
            return await once(req.prompt, None)
        kind = mime.partition("/")[0]
        return await ranges.ask(once, prompt=req.prompt, fmt=want.format, kind=kind,
                                duration=req.duration,
                                length=None if isinstance(length, str) else length,
                                most=lengths.limit(kind) if kind == "video" else None)

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
        # Tokens spent on this output as it is now, every attempt counted (a retry
        # pays again); another file, prompt or model starts from nothing.
        before = row if row is not None and states.is_current(row, want, sha) else None
        spent = Usage(
            prompt_tokens=(before.prompt_tokens if before else 0) + (
                usage.prompt_tokens if usage else 0),
            candidates_tokens=(before.output_tokens if before else 0) + (
                usage.candidates_tokens if usage else 0),
            thoughts_tokens=(before.thoughts_tokens if before else 0) + (
                usage.thoughts_tokens if usage else 0),
        )
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
                prompt_tokens=spent.prompt_tokens,
                output_tokens=spent.candidates_tokens,
                retry_at=retry_at,
                attempts=attempts,
                at=self._ctx.clock(),
                thoughts_tokens=spent.thoughts_tokens,
                model_version=model_version,
                service_tier=tier,
            )
        )


# How an output waiting for a pause of our own (a day's quota, the cap) is recorded.
PAUSE_WAIT = "waiting: "


class _NoCopy(Exception):
    """The remote copy went while the generation waited for its turn."""


# Outcomes recorded with the knobs they were asked under: asked again when those change.
_MARKED = (Outcome.BLOCKED, Outcome.INCOMPLETE, Outcome.FAILED)


def _write_sidecar(target: Path, text: str, expected: str | None,
                   mark: marks.Mark | None = None, xmp_marks: str | None = None) -> str | None:
    written = sidecar.write_atomic(target, text, expected=expected, mark=mark)
    if written is not None and xmp_marks is not None:
        # After the rename: never remembered as ours what the file does not hold.
        marks.keep_xmp(target, xmp_marks, marks.with_hash(mark, written) if mark else None)
    return written


def _answer_held(target: Path, fmt: str) -> marks.Mark | None:
    """The answer the sidecar holds by its mark. An XMP is merged into field by
    field, so one another tool rewrote since (its mark gone with the file) still
    holds the answer the folder's marks file says was merged into it."""
    mark = marks.ours(target)
    if mark is None and fmt == "xmp":
        return marks.xmp_answer(target)
    return mark


_GONE = LocalFacts(-1, -1, -1)  # no regular file there any more


def _stat_if_changed(path: str, row: PathRow | None,
                     within: str | None = None) -> LocalFacts | None:
    """The file's stat when it differs from the recorded one (``_GONE``: no file);
    None when it is the file identified. ``within``: a followed link's folder."""
    try:
        facts = local_facts(path, within)
    except (OSError, NotRegular):
        return _GONE
    if row is not None and (facts.size, facts.mtime_ns, facts.inode) == (
            row.size, row.mtime_ns, row.inode):
        return None
    return facts


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
