"""The one failure vocabulary (docs/architecture.md, "Failure vocabulary"): what a
failure means and when to try again, decided here for the mirror and the engine
alike. Pure.

- transient: 5xx, time-outs, 429s, answers we cannot read, a copy that vanished,
  a file not ACTIVE yet, disk full, a folder read-only for a while. Retried with
  capped exponential backoff and jitter for ever; never made permanent by a count.
- permanent: a verdict about these bytes (the service refused or FAILED the file,
  blocked the answer). Waits until the file, the prompt or the model changes.
- config: the key was refused. Calls stop until the config is fixed.
- held: a model the service does not serve (wire/41) or a tier the key may not use.
  A fact about the config, not about any file: its outputs wait, nothing is recorded
  against them, and a reload (or the model's return) resumes them.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Literal

from mediasync.gemini import ApiError, QuotaPaused, UploadSessionLost

Failure = Literal["auth", "storage", "transient", "permanent", "gone", "held"]
Kind = Literal["transient", "permanent", "config"]

BACKOFF_BASE = 30.0
BACKOFF_CAP = 3600.0  # about an hour: a long outage is noticed within the hour it ends
STORAGE_WAIT = 600.0  # the 20 GB store frees up only when files are deleted or expire
GONE_WAIT = 1.0  # a vanished copy is uploaded again at once
NOT_ACTIVE_WAIT = 2.0  # processing takes seconds: look again soon, doubling
STORAGE_FULL = "the project's 20 GB of file storage is full; waiting for space"
HELD_WAIT = 3600.0  # a model or tier held for the config: a reload resumes it at once


def classify(error: ApiError) -> Failure:
    """What an API error says about the file it happened to."""
    if isinstance(error, UploadSessionLost):
        # About an upload session, never the file's bytes nor the key (chunk and
        # query requests carry no key: a 403 there is the session's).
        return "transient"
    if error.model_missing or error.tier_refused:
        return "held"
    if error.key_invalid or (error.code in (401, 403) and not error.file_gone):
        return "auth"
    if error.storage_full:
        return "storage"
    if error.file_gone:
        return "gone"
    # Not ACTIVE yet, or an answer we could not read (code 0): try again later.
    if error.retryable or error.code == 0 or error.status == "FAILED_PRECONDITION":
        return "transient"
    return "permanent"


class ContentUnavailable(Exception):
    """No usable remote copy now; ``message`` says why, ``retry_at`` when to look again."""

    def __init__(self, message: str, retry_at: float | None, *, changed: bool = False) -> None:
        super().__init__(message)
        self.retry_at = retry_at
        self.changed = changed  # the local file changed: identify it again, now


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    reason: str
    retry_at: float | None  # None: not before something changes (permanent, config)
    # Whether this try counts as a failure of the file (an attempt). A pause of our
    # own (the day's quota, the spending cap) says nothing about the file.
    counts: bool = True

    @property
    def transient(self) -> bool:
        return self.kind == "transient"


def backoff(attempts: int, jitter: float, *, base: float = BACKOFF_BASE,
            cap: float = BACKOFF_CAP) -> float:
    """Seconds before try ``attempts + 1``: 30 s doubling to an hour, ±25 % jitter.

    ``jitter`` is a number in [0, 1) the caller draws, so this stays pure and a
    thousand files failing together do not come back together.
    """
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return delay * (0.75 + 0.5 * jitter)


def judge_api(
    error: ApiError, attempts: int, now: float, jitter: float, *, serving: bool = False
) -> Verdict:
    """The verdict on an API error after ``attempts`` tries.

    ``serving``: a working copy still serves (a renewal failed). Nothing said
    about the new upload may take that copy away, so every failure is transient.
    """
    kind = classify(error)
    if kind == "auth":
        return Verdict("config", f"the API key was refused: {error}", None)
    if kind == "held":
        # The owner's fix resumes it (engine/model_watch.py); until then it waits an
        # hour between looks, counting no attempt.
        return Verdict("transient", error.message or str(error), now + HELD_WAIT,
                       counts=False)
    if kind == "permanent" and not serving:
        return Verdict("permanent", f"the service refused it: {error.message or error}", None)
    if kind == "gone":
        return Verdict("transient", f"the remote copy is gone: {error}", now + GONE_WAIT)
    delay = backoff(attempts, jitter)
    if error.file_not_active:  # still PROCESSING (an answer that named no state)
        delay = min(delay, NOT_ACTIVE_WAIT * 2 ** max(0, attempts - 1))
    if kind == "storage":
        delay = max(delay, STORAGE_WAIT)
        reason = STORAGE_FULL
    else:
        reason = str(error)
    if error.retry_delay is not None and kind != "storage":
        # The server asked for at least this (clamped where it is read: an hour at
        # most). Not for a full store: its RetryInfo says "never" (wire/03), while
        # space comes back when copies are deleted or expire, ours included.
        delay = max(delay, error.retry_delay)
    if isinstance(error, QuotaPaused):
        # No call of its class goes out before then: an earlier try only fails again.
        return Verdict("transient", reason, now + max(delay, error.resume_at - now),
                       counts=False)
    return Verdict("transient", reason, now + delay)


def judge_os(error: OSError, attempts: int, now: float, jitter: float) -> Verdict:
    """A local file operation failed: disk full, read-only, permissions, a pulled
    disk. The folder's owner can fix any of them, so all are transient."""
    what = error.strerror or errno.errorcode.get(error.errno or 0) or str(error)
    return Verdict("transient", what, now + backoff(attempts, jitter))

