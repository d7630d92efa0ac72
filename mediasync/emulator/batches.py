"""Batch jobs (``models/{m}:batchGenerateContent``, ``batches/{id}``) in the live shapes.

A job is an Operation (wire/40): ``metadata`` of ``@type …v1main.GenerateContentBatch``
with ``state`` spelled ``BATCH_STATE_*`` and ``batchStats`` counts as strings, zero
counts omitted; once finished ``done: true`` and ``response`` (``…GenerateContentBatchOutput``)
with ``responsesFile`` (file input) or ``inlinedResponses`` (inline input), mirrored in
``metadata.output`` (files-api.md, "Batch mode"). States move with the emulator's clock:
PENDING for ``pending`` seconds, RUNNING until ``duration``, then SUCCEEDED; a job still
open 48 h after its creation ends EXPIRED with no results. Answers are made when the job
ends, against the files alive then. Where the service is vague we pick the reading
hardest on a client: inlined answers come back shuffled and without their metadata (so
only a file's keys match answers to requests), and a result file's lines are in no order.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from . import generate, thinking
from .errors import ApiError, file_not_found, not_active
from .models import GENERATE, Catalog
from .store import JSONL_MIMES, Clock, Store, rfc3339, valid_file_id

BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
BATCH = "batchGenerateContent"
EXPIRY = 48 * 3600.0  # a job pending or running this long ends EXPIRED
INLINE_LIMIT = 20 * 1000 * 1000  # inline requests, in all
OPEN = ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING")


@dataclass
class Job:
    id: str
    model: str
    display_name: str
    created: float
    requests: list[tuple[str | None, dict[str, Any]]]  # (key or None for inline, request)
    file_input: bool
    pending: float
    duration: float
    bad_lines: int = 0  # result lines to garble (the client must cope)
    ended: float | None = None
    final: str | None = None  # a state set on demand (cancel, expire, fail)
    output: dict[str, Any] | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"batches/{self.id}"


class Batches:
    """The job table; thread-safe. ``pending``/``duration``: how long new jobs take."""

    def __init__(self, clock: Clock, store: Store, models: Catalog, *,
                 pending: float = 5.0, duration: float = 30.0) -> None:
        self.clock = clock
        self.store = store
        self.models = models
        self.pending = pending
        self.duration = duration
        self.bad_lines = 0  # garble this many lines of the next results file
        self.created = 0
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._rng = random.Random()

    # -- requests --------------------------------------------------------
    def create(self, model: str, ver: str, body: Any) -> dict[str, Any]:
        """``batchGenerateContent``: a new PENDING job (not idempotent: each call makes one)."""
        spec = self.models.serving(model, ver, BATCH)  # 404 as wire/41 without the method
        batch = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(batch, dict):
            raise ApiError(400, "* BatchGenerateContentRequest.batch: batch is required")
        config = batch.get("inputConfig", batch.get("input_config"))
        if not isinstance(config, dict):
            raise ApiError(400, "* GenerateContentBatch.input_config: input_config is required")
        file_name = config.get("fileName", config.get("file_name"))
        if file_name:
            requests = self._from_file(str(file_name))
        else:
            requests = self._inline(config.get("requests"))
        if not requests:
            raise ApiError(400, "* GenerateContentBatch.input_config: no requests")
        display = batch.get("displayName", batch.get("display_name")) or ""
        with self._lock:
            job = Job(id=_new_id(), model=spec.id if model == spec.id else model,
                      display_name=str(display), created=self.clock.now(),
                      requests=requests, file_input=bool(file_name), pending=self.pending,
                      duration=self.duration, bad_lines=self.bad_lines)
            self.bad_lines = 0
            self._jobs[job.id] = job
            self.created += 1
        return self._operation(job, ver)

    def get(self, job_id: str, ver: str) -> dict[str, Any]:
        return self._operation(self._job(job_id), ver)

    def list(self, ver: str, size: int, token: str) -> dict[str, Any]:
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)
        start = int(token) if token.isdigit() else 0
        chunk = jobs[start:start + size]
        body: dict[str, Any] = {}
        if chunk:
            body["operations"] = [self._operation(j, ver) for j in chunk]
        if start + size < len(jobs):
            body["nextPageToken"] = str(start + size)
        return body

    def cancel(self, job_id: str) -> None:
        job = self._job(job_id)
        with self._lock:
            if self._state(job) in OPEN:
                job.final, job.ended = "BATCH_STATE_CANCELLED", self.clock.now()

    def delete(self, job_id: str) -> None:
        self._job(job_id)
        with self._lock:
            self._jobs.pop(job_id, None)

    # -- control ---------------------------------------------------------
    def end(self, job_id: str, state: str, answered: int = 0) -> None:
        """End an open job now in ``state`` (EXPIRED, FAILED, CANCELLED, or one the
        client does not know); with ``answered``, the first that many requests were
        answered before it ended, and its output names their results."""
        job = self._job(job_id)
        with self._lock:
            if self._state(job) in OPEN:
                if answered:
                    self._output(job, job.requests[:answered])
                job.final, job.ended = state, self.clock.now()

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    # -- internals -------------------------------------------------------
    def _job(self, job_id: str) -> Job:
        job_id = job_id.removeprefix("batches/")
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        return job

    def _inline(self, raw: Any) -> list[tuple[str | None, dict[str, Any]]]:
        items = raw.get("requests") if isinstance(raw, dict) else raw
        if not isinstance(items, list):
            raise ApiError(400, "* GenerateContentBatch.input_config.requests: requests is "
                                "required")
        if len(json.dumps(items)) > INLINE_LIMIT:
            raise ApiError(400, "Request payload size exceeds the limit: 20000000 bytes.")
        out = []
        for item in items:
            req = item.get("request") if isinstance(item, dict) else None
            if not isinstance(req, dict):
                raise ApiError(400, "* InlinedRequest.request: request is required")
            out.append((None, req))
        return out

    def _from_file(self, name: str) -> list[tuple[str | None, dict[str, Any]]]:
        rec = self.store.get(generate.file_id_of(name))
        if rec.data is None or rec.mime not in JSONL_MIMES:
            raise ApiError(400, f"The input file {name} is not a JSONL file.")
        out: list[tuple[str | None, dict[str, Any]]] = []
        for n, line in enumerate(rec.data.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                raise ApiError(400, f"Invalid JSON at line {n} of {name}.") from None
            if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
                raise ApiError(400, f"Line {n} of {name} has no request.")
            out.append((str(item.get("key", n)), item["request"]))
        return out

    def _state(self, job: Job) -> str:
        """The job's state now; finishing a job makes its answers (lock held)."""
        if job.final is not None:
            return job.final
        now = self.clock.now()
        if now >= job.created + job.duration and job.duration < EXPIRY:
            self._finish(job, job.created + job.duration)
            return "BATCH_STATE_SUCCEEDED"
        if now >= job.created + EXPIRY:
            job.final, job.ended = "BATCH_STATE_EXPIRED", job.created + EXPIRY
            return job.final
        return "BATCH_STATE_PENDING" if now < job.created + job.pending else "BATCH_STATE_RUNNING"

    def _finish(self, job: Job, at: float) -> None:
        job.final, job.ended = "BATCH_STATE_SUCCEEDED", at
        self._output(job, job.requests)

    def _output(self, job: Job, requests: list[tuple[str | None, dict[str, Any]]]) -> None:
        """Answer ``requests`` and name their results as the job's output."""
        results = [(key, self._answer(job.model, req)) for key, req in requests]
        ok = sum(1 for _, (kind, _) in results if kind == "response")
        job.counts = {"successfulRequestCount": ok, "failedRequestCount": len(results) - ok}
        if job.file_input:
            lines = []
            for key, (kind, value) in results:
                item = {kind: value, "key": key}
                if self._rng.random() < 0.5:  # key order within a line varies (wire/19)
                    item = {"key": key, kind: value}
                lines.append(json.dumps(item, ensure_ascii=False))
            self._rng.shuffle(lines)
            for i in range(min(job.bad_lines, len(lines))):
                lines[i] = lines[i][: len(lines[i]) // 2]  # cut short: not JSON
            rec = self.store.add_generated(f"batch-{_long_id()}", "application/jsonl",
                                           ("\n".join(lines) + "\n").encode())
            job.output = {"@type": OUTPUT_TYPE, "responsesFile": f"files/{rec.id}"}
        else:
            inlined = [{kind: value} for _, (kind, value) in results]  # no metadata
            self._rng.shuffle(inlined)
            job.output = {"@type": OUTPUT_TYPE, "inlinedResponses": {"inlinedResponses": inlined}}

    def _answer(self, model: str, req: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """("response", GenerateContentResponse) or ("error", google.rpc.Status)."""
        try:
            spec = self.models.serving(model, "v1beta", GENERATE)
            config = req.get("generationConfig", req.get("generation_config"))
            thinking.check(spec, config)
            uris, prompt = generate.file_parts(req)
            records, resolutions = [], []
            wide = generate.resolution(_get(config, "mediaResolution", "media_resolution"))
            now = self.clock.now()
            for uri, _mime, own in uris:
                file_id = generate.file_id_of(uri)
                if not valid_file_id(file_id):
                    raise file_not_found(file_id)
                rec = self.store.get(file_id)
                if rec.state(now) != "ACTIVE":
                    raise not_active(file_id)
                records.append(rec)
                resolutions.append(own or wide)
            tokens = generate.prompt_tokens(records, prompt, spec.family, resolutions)
            return "response", generate.answer(spec, records, prompt, tokens, None, config)
        except ApiError as e:
            err = e.body()["error"]
            err.pop("details", None)
            return "error", err

    def _operation(self, job: Job, ver: str) -> dict[str, Any]:
        with self._lock:
            state = self._state(job)
            now = self.clock.now()
            total = len(job.requests)
            if state == "BATCH_STATE_SUCCEEDED" or job.ended is not None:
                counts = dict(job.counts)  # an ended job's answers made before it ended
            elif state == "BATCH_STATE_RUNNING":
                run = max(1e-9, job.duration - job.pending)
                done = min(total - 1, int(total * (now - job.created - job.pending) / run))
                counts = {"successfulRequestCount": done, "pendingRequestCount": total - done}
            elif state == "BATCH_STATE_PENDING":
                counts = {"pendingRequestCount": total}
            else:
                counts = {}
            stats = {"requestCount": str(total)}
            stats.update({k: str(v) for k, v in counts.items() if v})  # zero counts omitted
            meta: dict[str, Any] = {
                "@type": BATCH_TYPE,
                "model": f"models/{job.model}",
                "displayName": job.display_name,
                "createTime": rfc3339(job.created, 9),
                "updateTime": rfc3339(job.ended if job.ended is not None else now, 6),
                "batchStats": stats,
                "state": state,
                "name": job.name,
            }
            op: dict[str, Any] = {"name": job.name, "metadata": meta}
            if job.ended is not None:
                meta["endTime"] = rfc3339(job.ended, 9)
                op["done"] = True
                if job.output is not None:  # an ended job's answers made before it ended too
                    meta["output"] = job.output
                    op["response"] = job.output
            return op


def _get(mapping: Any, camel: str, snake: str) -> Any:
    if not isinstance(mapping, dict):
        return None
    return mapping.get(camel, mapping.get(snake))


def _new_id() -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(28))


def _long_id() -> str:
    # Longer than a files.get name may be (40): the service refuses get on it.
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(40))
