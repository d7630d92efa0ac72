"""Open batch jobs for `status` and `sync`: name, outputs, the service's batchStats
progress, age, and what happens at ``max_wait``; and which outputs wait in one."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from mediasync.rules import batching, units
from mediasync.store import Store

IN_JOB = "in batch job"  # how a waiting output names its job (sync's summary counts them)


@dataclass
class JobReport:
    name: str  # batches/… (or our key while it is being created)
    key: str
    model: str
    state: str  # creating, or the service's PENDING/RUNNING/… as last seen
    outputs: int
    done: int  # answered so far (batchStats successful + failed)
    stats: dict[str, int]
    age: float  # seconds since the job was recorded
    max_wait_at: float  # when it is cancelled if still open
    at_max_wait: str
    message: str | None = None

    @property
    def progress(self) -> str:
        return f"{self.done}/{self.outputs} done"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "progress": self.progress}


def open_jobs(store: Store, now: float) -> list[JobReport]:
    out = []
    try:
        jobs = store.jobs()
    except sqlite3.OperationalError:  # read-only, before the daemon's migration 5
        return []
    for job in jobs:
        items = [i for i in store.job_items(job.key) if i.state == batching.WAITING]
        try:
            stats = {str(k): int(v) for k, v in json.loads(job.stats or "{}").items()}
        except (ValueError, TypeError, AttributeError):
            stats = {}
        done = stats.get("successfulRequestCount", 0) + stats.get("failedRequestCount", 0)
        at = job.created_at + job.max_wait
        stamp = units.utc_stamp(at)
        out.append(JobReport(
            name=job.name or f"(creating {job.key})", key=job.key, model=job.model,
            state=job.service_state if job.state == batching.OPEN and job.service_state
            else job.state,
            outputs=len(items), done=done, stats=stats, age=max(0.0, now - job.created_at),
            max_wait_at=at,
            at_max_wait=f"if still open at {stamp} (max_wait) it is cancelled and its "
                        f"{len(items)} outputs are generated interactively",
            message=job.message))
    return out


def waiting_outputs(store: Store, jobs: list[JobReport]) -> dict[tuple[str, str], str]:
    """(path, suffix) → why the output waits: the job it waits in and its progress."""
    out: dict[tuple[str, str], str] = {}
    for j in jobs:
        why = f"{IN_JOB} {j.name} ({j.state}, {j.progress})"
        for item in store.job_items(j.key):
            if item.state == batching.WAITING:
                out[(item.path, item.suffix)] = why
    return out


def render(jobs: list[JobReport]) -> list[str]:
    return [f"BATCH: {j.name}: {j.outputs} outputs for {j.model}, {j.state}, {j.progress}, "
            f"open {j.age / 3600:.1f} h; {j.at_max_wait}"
            + (f" (last: {j.message})" if j.message else "") for j in jobs]
