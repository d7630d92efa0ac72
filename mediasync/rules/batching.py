"""Batch jobs, decided purely: which outputs go by batch, when to poll, what a job's
end means for its outputs; and the rows the store keeps for them.

A job is recorded before it is created (``creating``, its key in the display name),
``open`` once the service named it, ``ended`` when its outputs are settled. An item is
one output in one job: ``waiting`` for the job, ``answered`` (the answer kept until the
output is written), ``error`` (a result line's error, judged by the failure vocabulary
once), ``interactive`` (the job ended without an answer for it: it is generated
interactively and never batched again), ``dropped`` (the file or prompt changed).
"""

from __future__ import annotations

from dataclasses import dataclass

from mediasync.media.formats import FILE_TTL_SECONDS

CREATING, OPEN, ENDED = "creating", "open", "ended"
WAITING, ANSWERED, ERROR, INTERACTIVE, DROPPED = (
    "waiting", "answered", "error", "interactive", "dropped")
POLL_FIRST = 2.0  # seconds: a small job may be done within a minute
POLL_CAP = 600.0  # then every 10 minutes (a job takes up to a day)
CREATE_RETRY_FIRST = 30.0
CREATE_RETRY_CAP = 3600.0
# A copy must outlive the job by this much (the job's last request runs just before
# max_wait; the service's own clock may differ a little from ours).
COPY_MARGIN = 3600.0
JOB_LIFE = float(FILE_TTL_SECONDS)  # a job, and its results file, outlive no 48 h
DISPLAY_PREFIX = "mediasync-batch"
# Our display name of a job: the prefix, this state directory's instance id, the key.


@dataclass(frozen=True)
class JobRow:
    key: str  # ours, in the display name: finds a job whose create answer was lost
    model: str
    state: str  # creating, open, ended
    created_at: float  # when the intent was recorded
    max_wait: float
    name: str | None = None  # batches/… once known
    input_file: str | None = None  # files/… of the uploaded JSONL
    service_state: str | None = None  # PENDING, RUNNING, SUCCEEDED… as last seen
    stats: str | None = None  # batchStats as JSON, as last seen
    next_at: float | None = None  # the next create attempt or poll
    attempts: int = 0  # creates tried, or polls made
    message: str | None = None  # why it ended, or the last failure


@dataclass(frozen=True)
class ItemRow:
    job_key: str
    request_key: str  # the line's key: answers are matched by it only
    path: str
    suffix: str
    sha256: str
    prompt_hash: str
    model: str
    file_uri: str  # the copy the request names: kept alive while the job is open
    state: str
    answer: str | None = None  # the GenerateContentResponse (JSON) once answered
    error: str | None = None  # the result line's error (JSON)
    answer_key: str | None = None  # what decides its answer (engine/answers.answer_key)


def display_name(instance: str, key: str) -> str:
    return f"{DISPLAY_PREFIX}:{instance}:{key}"


def key_of(display: str | None, instance: str) -> str | None:
    """Our job key in a listed job's display name, if the job is this instance's."""
    if not display:
        return None
    head, _, key = display.rpartition(":")
    return key if head == f"{DISPLAY_PREFIX}:{instance}" and key else None


def goes_by_batch(mode: str, released: bool, interactive: bool) -> bool:
    """Whether a pending output is held for a batch job. ``released``: its backlog was
    too small this pass (auto); ``interactive``: a job of it ended without an answer."""
    return mode in ("auto", "always") and not released and not interactive


def submit(mode: str, pending: int, min_outputs: int) -> bool:
    """Whether ``pending`` outputs of one model and settings go as one job: always, or
    under auto a backlog of at least ``min_outputs`` (a lone new file stays
    interactive)."""
    if pending <= 0:
        return False
    return mode == "always" or (mode == "auto" and pending >= min_outputs)


def poll_delay(polls: int) -> float:
    """Seconds before the next poll after ``polls`` polls: seconds at first, then minutes."""
    return min(POLL_CAP, POLL_FIRST * 2 ** max(0, polls))


def create_delay(attempts: int) -> float:
    """Seconds before another create after ``attempts`` refused ones (429, 5xx)."""
    return min(CREATE_RETRY_CAP, CREATE_RETRY_FIRST * 2 ** max(0, attempts - 1))


def needs_renewal(expires_at: float | None, now: float, max_wait: float) -> bool:
    """A copy that would not outlive a job submitted now is renewed first; one with
    nearly a fresh copy's life left is not (with ``max_wait`` near 48 h no copy can
    have the margin, and renewing gains nothing: every file was uploaded again for
    every job)."""
    if expires_at is None:
        return True
    return expires_at < min(now + max_wait + COPY_MARGIN, now + FILE_TTL_SECONDS - COPY_MARGIN)


def overdue(created_at: float, now: float, max_wait: float) -> bool:
    """A job open this long is cancelled; its outputs go interactive."""
    return now - created_at >= max_wait


def outcome(service_state: str | None, ended: bool = False,
            results: bool = False) -> str | None:
    """What a job's state means for its outputs: "results" (read the results file),
    "interactive" (it ended with none), None (still open). ``ended``: also done in a
    state we do not know, or none (BatchJob.ended); an ended job that names a results
    file has it read, whatever its state: the answers in it are paid for."""
    if service_state == "SUCCEEDED":
        return "results"
    if service_state in ("FAILED", "CANCELLED", "EXPIRED") or ended:
        return "results" if results else "interactive"
    return None
