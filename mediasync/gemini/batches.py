"""The Batch API: create, get, list, cancel, delete a job, and download its results.

A job is an Operation (files-api.md, "Batch mode"; wire/40) read leniently: the output
from ``response`` or ``metadata.output``, counts as strings or numbers (a zero count is
left out), the state in any of its spellings (``BATCH_STATE_RUNNING``, the SDK's
``JOB_STATE_RUNNING``, bare ``RUNNING``). **Create is not idempotent**: it is never
retried inside the call; a create whose answer was lost is found again by its display
name in :func:`list_jobs` (the caller puts a key of its own there).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, from_status
from .models import Generation, _dict, _int, _list, epoch, json_object, parse_time
from .pacing import BATCHES
from .retry import RetryPolicy
from .transport import Transport

PENDING, RUNNING, SUCCEEDED = "PENDING", "RUNNING", "SUCCEEDED"
FAILED, CANCELLED, EXPIRED = "FAILED", "CANCELLED", "EXPIRED"
ENDED = (SUCCEEDED, FAILED, CANCELLED, EXPIRED)
JSONL_MIME = "application/jsonl"  # the bare "jsonl" is refused (wire/04)
_ONCE = RetryPolicy(max_attempts=1)  # a retried create makes a second job


def state_name(value: Any) -> str | None:
    """``BATCH_STATE_RUNNING`` / ``JOB_STATE_RUNNING`` / ``RUNNING`` → ``RUNNING``."""
    if not isinstance(value, str) or not value.strip():
        return None
    name = value.strip().upper()
    for prefix in ("BATCH_STATE_", "JOB_STATE_"):
        name = name.removeprefix(prefix)
    return name


@dataclass(frozen=True)
class BatchJob:
    name: str
    state: str | None  # PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED (or unknown)
    display_name: str | None = None
    model: str | None = None
    create_time: float | None = None
    done: bool = False
    stats: dict[str, int] = field(default_factory=dict)  # requestCount, successful…, 0s omitted
    responses_file: str | None = None
    inlined: list[dict[str, Any]] | None = None
    error: str | None = None

    @property
    def ended(self) -> bool:
        """In an end state, or done in one we do not know (or none)."""
        return self.state in ENDED or self.done

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchJob:
        meta = _dict(data.get("metadata"))
        output = _dict(data.get("response")) or _dict(meta.get("output"))
        inlined = _dict(output.get("inlinedResponses")).get("inlinedResponses")
        stats = {str(k): n for k, v in _dict(meta.get("batchStats")).items()
                 if (n := _int(v)) is not None}
        err = _dict(data.get("error"))
        return cls(
            name=str(data.get("name") or meta.get("name") or ""),
            state=state_name(meta.get("state") or data.get("state")),
            display_name=meta.get("displayName") if isinstance(meta.get("displayName"), str)
            else None,
            model=str(meta["model"]).removeprefix("models/") if meta.get("model") else None,
            create_time=epoch(parse_time(meta.get("createTime"))),
            done=bool(data.get("done")),
            stats=stats,
            responses_file=output.get("responsesFile") or None,
            inlined=_list(inlined) if inlined is not None else None,
            error=str(err.get("message")) if err else None,
        )


@dataclass(frozen=True)
class Results:
    """A results file read by key: answers, per-line errors, and lines we could not read."""

    answers: dict[str, Generation]
    errors: dict[str, ApiError]
    unreadable: int


def parse_results(data: bytes) -> Results:
    """One ``{"key", "response"}`` or ``{"key", "error"}`` a line, keys in any order
    (wire/19). A line that does not parse, or has no key, is counted, never guessed at."""
    answers: dict[str, Generation] = {}
    errors: dict[str, ApiError] = {}
    bad = 0
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            bad += 1
            continue
        key = item.get("key") if isinstance(item, dict) else None
        if not isinstance(key, str | int) or isinstance(key, bool):
            bad += 1
            continue
        if isinstance(item.get("response"), dict):
            answers[str(key)] = Generation.from_json(item["response"])
        elif isinstance(item.get("error"), dict):
            errors[str(key)] = from_status(item["error"])
        else:
            bad += 1
    return Results(answers, errors, bad)


def _name(name: str) -> str:
    return name if name.startswith("batches/") else f"batches/{name}"


async def create(transport: Transport, model: str, display_name: str, *,
                 file_name: str | None = None,
                 requests: list[dict[str, Any]] | None = None) -> BatchJob:
    """One create, never retried in the call (a lost answer would make two jobs)."""
    model = model.removeprefix("models/")
    source: dict[str, Any] = ({"fileName": file_name} if file_name else
                              {"requests": {"requests": [{"request": r} for r in requests or []]}})
    body = {"batch": {"displayName": display_name, "inputConfig": source}}
    response = await transport.call("batches.create", "POST",
                                    transport.url(f"models/{model}:batchGenerateContent"),
                                    json=body, retry=_ONCE, budget=BATCHES,
                                    quota_retries=False)
    return BatchJob.from_json(json_object(response.content))


async def get(transport: Transport, name: str) -> BatchJob:
    response = await transport.call("batches.get", "GET", transport.url(_name(name)),
                                    budget=BATCHES)
    return BatchJob.from_json(json_object(response.content))


async def list_jobs(transport: Transport, page_size: int = 100) -> list[BatchJob]:
    """Every job of the key, every page."""
    return [BatchJob.from_json(j)
            for j in await transport.pages("batches.list", "batches", "operations", page_size,
                                       BATCHES)]


async def cancel(transport: Transport, name: str) -> None:
    await transport.call("batches.cancel", "POST", transport.url(f"{_name(name)}:cancel"),
                         budget=BATCHES)


async def delete(transport: Transport, name: str) -> None:
    await transport.call("batches.delete", "DELETE", transport.url(_name(name)),
                         budget=BATCHES)


async def download(transport: Transport, file_name: str) -> bytes:
    """A file the service made (a results file): ``GET /download/{ver}/files/{id}:download
    ?alt=media``; ``files.get`` refuses its long id."""
    file_id = file_name.removeprefix("files/")
    url = f"{transport.base_url}/download/{transport.api_version}/files/{file_id}:download"
    response = await transport.call("files.download", "GET", url, params={"alt": "media"})
    return response.content
