"""The one decoder of recorded state (docs/architecture.md, "State machines").

A content's remote copy and each output of a file are small state machines. Their
state is decoded from the store's rows here and nowhere else: the engine's next
step (steps.remote_step, steps.output_step), `status`, the `sync` summary and the
systemd STATUS line all ask these two functions. Pure.

The two tables below (a state, how the store records it, the way out) are data,
next to the enums: ``COPY_STATES`` and ``OUTPUT_STATES``. docs/tables.py writes them
into docs/architecture.md; a test fails while the docs hold other tables, or while
a state has no row.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from mediasync.rules.rows import Outcome

if TYPE_CHECKING:
    from mediasync.rules.rows import ContentRow, CopyFacts, Desired, OutputFacts, OutputRow

# A copy this close to expiry is not handed to a generation: it could die mid-call.
MIN_USABLE_SECONDS = 120.0


class Copy(StrEnum):
    NONE = "none"
    UPLOADING = "uploading"
    PROCESSING = "processing"
    SERVING = "serving"
    RENEWING = "renewing"
    EXPIRED = "expired"
    WAITING = "waiting"
    FAILED = "failed"


class Output(StrEnum):
    MISSING = "missing"
    STALE = "stale"
    WRITING = "writing"
    WRITTEN = "written"
    KEPT_EDIT = "kept_edit"
    WAITING = "waiting"
    BLOCKED = "blocked"
    INCOMPLETE = "incomplete"
    FAILED = "failed"


class Row(NamedTuple):
    """One row of a state table: what the store holds in that state, and how it ends."""

    recorded_as: str
    way_out: str


# Remote copy of a content (a ``contents`` row), in the order a copy goes through them.
COPY_STATES: Mapping[Copy, Row] = MappingProxyType({
    Copy.NONE: Row("no copy, nothing under way", "upload → uploading"),
    Copy.UPLOADING: Row("an upload URL and offset", "resume → processing"),
    Copy.PROCESSING: Row("an uploaded file, not ACTIVE yet", "poll → serving / failed / none"),
    Copy.SERVING: Row("a copy usable for a generation", "renewal window → renewing"),
    Copy.RENEWING: Row("usable, and due or a fresh copy under way",
                       "fresh copy ACTIVE → serving"),
    Copy.EXPIRED: Row("a copy no longer usable (gone, near expiry)", "upload → uploading"),
    Copy.WAITING: Row("a transient failure, retry time ahead", "retry time → its step again"),
    Copy.FAILED: Row("the service refused these bytes", "the file changes (new content)"),
})

# Output (a sidecar) of a file (an ``outputs`` row).
OUTPUT_STATES: Mapping[Output, Row] = MappingProxyType({
    Output.MISSING: Row("no record", "generate"),
    Output.STALE: Row("a record for other bytes, prompt, model or name", "generate"),
    Output.WRITING: Row("a write recorded as pending", "confirm (on disk) or generate"),
    Output.WRITTEN: Row("our bytes written", "deleted or changed → generate"),
    Output.KEPT_EDIT: Row("the owner's edit kept", "file/prompt/model change"),
    Output.WAITING: Row("a transient failure, retry time recorded", "retry time → generate"),
    Output.BLOCKED: Row("no answer (safety…, or out of tokens)", "file/prompt/model (+ knobs)"),
    Output.INCOMPLETE: Row("an answer cut off or losing cues; not written",
                           "file/prompt/model (+ knobs, ranges)"),
    Output.FAILED: Row("refused for these bytes", "file/prompt/model change"),
})


def usable(c: ContentRow | CopyFacts, now: float) -> bool:
    """The content has a remote copy a generation can use now."""
    return (
        c.remote_name is not None
        and c.expires_at is not None
        and now < c.expires_at - MIN_USABLE_SECONDS
    )


def renew_at(expires_at: float, renew_before: float) -> float:
    """When a copy enters its renewal window: ``renew_before`` ahead of its expiry."""
    return expires_at - renew_before


def copy_state(c: ContentRow | CopyFacts, now: float, renew_before: float) -> Copy:
    """The state of a content's remote copy. A working copy serves whatever happened
    to its renewal: no failure of a new upload takes it away."""
    if usable(c, now):
        assert c.expires_at is not None
        due = now >= renew_at(c.expires_at, renew_before)
        # A copy being made (e.g. after a restart mid-renewal) finishes in the background.
        return Copy.RENEWING if due or c.next_url or c.next_name else Copy.SERVING
    if c.error and c.retry_at is None:
        return Copy.FAILED
    if c.retry_at is not None and c.retry_at > now:
        return Copy.WAITING
    if c.next_name:
        return Copy.PROCESSING
    if c.next_url:
        return Copy.UPLOADING
    return Copy.EXPIRED if c.remote_name else Copy.NONE


def is_current(row: OutputRow | OutputFacts | None, want: Desired, sha256: str,
               sidecar: str | None = None) -> bool:
    """The recorded output answers this prompt and model for these bytes. ``sidecar``:
    the file's sidecar path when ``want`` is its folder's template (desired.templates),
    which has none."""
    return (
        row is not None
        and row.sha256 == sha256
        and row.prompt_hash == want.prompt_hash
        and row.model == want.model
        and row.sidecar == (want.sidecar if sidecar is None else sidecar)
    )


def output_state(row: OutputRow | OutputFacts | None, want: Desired, sha256: str,
                 sidecar: str | None = None) -> Output:
    """The recorded state of one output (what is on disk is judged separately).
    ``sidecar``: as for ``is_current``."""
    if row is None:
        return Output.MISSING
    if not is_current(row, want, sha256, sidecar):
        return Output.STALE
    if row.outcome == Outcome.FAILED:
        return Output.WAITING if row.retry_at is not None else Output.FAILED
    # An outcome a newer mediasync wrote: generate again. (A dict, not Output(...):
    # asked for every output of every file by `status`.)
    return _OUTPUT_OF.get(row.outcome, Output.STALE)


_OUTPUT_OF = {o.value: o for o in Output}


def pending_hash(row: OutputRow | None) -> str | None:
    """The hash of the bytes a write recorded as pending will leave, or None.

    While one is pending (a crash before the rename), only those bytes are current;
    anything else at the sidecar's path is stale or the owner's."""
    if row is not None and row.outcome == Outcome.WRITING and row.pending_hash:
        return row.pending_hash
    return None
