"""The store's row types: plain frozen values, shared by the store (which writes
them), the pure rules (`rules/`) and `status` (`report/`), so that the
rules need not import the database layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from mediasync.config import PromptConfig



class Outcome(StrEnum):
    """What an output row records; :func:`mediasync.rules.states.output_state` decodes it
    (with the row's retry time: a failed outcome with one is waiting)."""

    WRITING = "writing"  # a write recorded as pending (its hash), before the rename
    WRITTEN = "written"
    KEPT_EDIT = "kept_edit"
    BLOCKED = "blocked"
    INCOMPLETE = "incomplete"  # an answer cut off, or subtitles that lost cues: not written
    FAILED = "failed"


# The store's rows (PathRow, ContentRow, OutputRow) and Desired are read-only: change one
# with dataclasses.replace, never in place. They are not frozen only because a pass over
# the library builds 100,000 of each, and a frozen dataclass's __init__ (a setattr call
# per field) costs 7 times a plain one's: a tenth of a no-op sync's time.
_ROW = dataclass(slots=True)


@_ROW
class PathRow:
    path: str
    folder: str
    size: int
    mtime_ns: int
    inode: int
    sha256: str | None
    kind: str
    mime: str
    problem: str | None
    gone_at: float | None
    updated_at: float


class CopyRef(NamedTuple):
    """What a listing is reconciled against, of one content row: a light tuple, where
    100,000 whole ``ContentRow``s were most of a refresh's memory."""

    sha256: str
    size: int
    remote_name: str | None
    expires_at: float | None
    next_url: str | None
    next_name: str | None


@_ROW
class ContentRow:
    sha256: str
    size: int
    mime: str
    kind: str
    remote_name: str | None
    uri: str | None
    expires_at: float | None
    next_url: str | None
    next_offset: int | None
    next_granularity: int | None
    next_name: str | None
    next_uri: str | None
    next_expires_at: float | None
    error: str | None
    retry_at: float | None
    attempts: int
    uploads: int
    updated_at: float
    remote_bytes: int | None = None  # the live copy's size when a proxy (None: the original)
    next_bytes: int | None = None  # the same of the copy being made

    @property
    def copy_mime(self) -> str:
        """The MIME type of the live copy: a proxy's (media/proxy.py) or the original's."""
        if self.remote_bytes is None:
            return self.mime
        from mediasync.media.proxy import AUDIO_MIME, VIDEO_MIME

        return VIDEO_MIME if self.kind == "video" else AUDIO_MIME


@_ROW
class OutputRow:
    path: str
    suffix: str
    sha256: str
    prompt_hash: str
    model: str
    sidecar: str
    written_hash: str | None
    pending_hash: str | None
    outcome: str
    message: str | None
    prompt_tokens: int
    output_tokens: int
    retry_at: float | None
    attempts: int
    at: float
    thoughts_tokens: int = 0
    model_version: str | None = None  # the model that served the answer (modelVersion)
    service_tier: str | None = None  # the tier that served it (or was asked for)


# What `status` reads of each row (Store.report_files): light tuples of only those
# columns. Reading all 49 of the full rows was a third of `status` over 100,000 files;
# the decoders (rules/states.py) take either form, as they read no other field.
class PathFacts(NamedTuple):
    path: str
    folder: str
    sha256: str | None
    kind: str
    problem: str | None


class CopyFacts(NamedTuple):
    size: int
    remote_name: str | None
    expires_at: float | None
    next_url: str | None
    next_offset: int | None
    next_name: str | None
    error: str | None
    retry_at: float | None
    remote_bytes: int | None


class OutputFacts(NamedTuple):
    suffix: str
    sha256: str
    prompt_hash: str
    model: str
    sidecar: str
    outcome: str
    message: str | None
    prompt_tokens: int
    output_tokens: int
    thoughts_tokens: int
    retry_at: float | None
    model_version: str | None
    service_tier: str | None


@dataclass(frozen=True, slots=True)
class LocalFacts:
    size: int
    mtime_ns: int
    inode: int


@_ROW  # built per file and output in every pass, as the rows are
class Desired:
    suffix: str  # the output's key: its sidecar suffix, "*"-prefixed when named after the stem
    prompt: str
    model: str
    prompt_hash: str
    sidecar: str
    spec: PromptConfig | None = None  # format, schema, system instruction, …
    language: str | None = None
    subformat: str | None = None  # srt or vtt

    @property
    def format(self) -> str:
        return self.spec.format if self.spec else "text"
