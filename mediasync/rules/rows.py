"""The store's row types: plain frozen values, shared by the store (which writes
them), the pure rules (plan.py, states.py) and `status` (report.py), so that the
rules need not import the database layer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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
