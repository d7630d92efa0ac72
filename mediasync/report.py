"""What each file's state is, for `mediasync status` and the `sync` summary.

Reads the store only (read-only while the daemon runs) and the config for what
each file should have; renders text or JSON.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mediasync import plan
from mediasync.config import Config
from mediasync.store import Store


@dataclass
class SidecarReport:
    name: str
    outcome: str  # written, kept_edit, blocked, failed, pending
    message: str | None = None
    tokens: int = 0
    format: str = "text"  # text, json, xmp, subtitles


@dataclass
class FileReport:
    path: str
    folder: str
    state: str  # synced, pending, uploading, processing, waiting, failed
    message: str | None = None
    remote_name: str | None = None
    expires_at: float | None = None
    upload_progress: str | None = None
    sidecars: list[SidecarReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state == "synced"

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.sidecars)


def build(store: Store, config: Config) -> list[FileReport]:
    reports = []
    contents = {c.sha256: c for c in store.all_contents()}
    outputs: dict[str, dict[str, Any]] = {}
    for o in store.all_outputs():
        outputs.setdefault(o.path, {})[o.suffix] = o
    for row in store.all_paths():
        if row.gone_at is not None:
            continue
        r = FileReport(path=row.path, folder=row.folder, state="pending")
        reports.append(r)
        if row.problem:
            r.state, r.message = "failed", row.problem
            continue
        c = contents.get(row.sha256 or "")
        if c is None:
            continue
        r.remote_name, r.expires_at = c.remote_name, c.expires_at
        if c.error and c.retry_at is None:
            r.state, r.message = "failed", c.error
            continue
        if c.next_url and not c.remote_name:
            r.state = "uploading"
            sent = plan.human_bytes(c.next_offset or 0)
            r.upload_progress = f"{sent} of {plan.human_bytes(c.size)}"
        elif c.next_name and not c.remote_name:
            r.state = "processing"
        elif c.error:
            r.state, r.message = "waiting", c.error
        folder = config.folder_for(Path(row.path))
        mine = outputs.get(row.path, {})
        complete = c.remote_name is not None
        wants = plan.desired(folder, row.path, row.kind, config.api.model) if folder else []
        for want in wants:
            o = mine.get(want.suffix)
            name = Path(want.sidecar).name
            # Same rule as the engine: a model change makes an output pending too.
            if o is None or not plan.is_current(o, want, row.sha256 or ""):
                r.sidecars.append(SidecarReport(name, "pending", format=want.format))
                complete = False
                continue
            r.sidecars.append(
                SidecarReport(name, o.outcome, o.message, o.prompt_tokens + o.output_tokens,
                              want.format)
            )
            if o.outcome not in ("written", "kept_edit"):
                complete = False
                if o.outcome in ("failed", "blocked") and r.state == "pending":
                    r.state, r.message = "failed", f"{name}: {o.message}"
        if complete and r.state == "pending":
            r.state = "synced"
    return reports


def _when(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    left = ts - now
    stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{stamp} (in {left / 3600:.1f} h)" if left > 0 else f"{stamp} (expired)"


def render_text(reports: list[FileReport], config: Config, now: float, halted: str | None = None,
                *, verbose: bool = True) -> str:
    lines = []
    if halted:
        lines.append(f"HALTED: {halted}")
    for folder in config.folders:
        mine = [r for r in reports if r.folder == str(folder.path)]
        counts: dict[str, int] = {}
        for r in mine:
            counts[r.state] = counts.get(r.state, 0) + 1
        tokens = sum(r.tokens for r in mine)
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no media files"
        lines.append(f"{folder.path}: {summary}; {tokens} tokens used")
        if not verbose:
            continue
        for r in mine:
            rel = os.path.relpath(r.path, folder.path)
            detail = r.state
            if r.upload_progress:
                detail += f" {r.upload_progress}"
            if r.remote_name:
                detail += f" · {r.remote_name} expires {_when(r.expires_at, now)}"
            lines.append(f"  {rel}: {detail}")
            if r.message:
                lines.append(f"      {r.message}")
            for s in r.sidecars:
                extra = f" ({s.message})" if s.message and s.outcome != "written" else ""
                kind = f" [{s.format}]" if s.format != "text" else ""
                lines.append(f"      {s.name}{kind}: {s.outcome.replace('_', ' ')}{extra}")
    return "\n".join(lines)


def render_json(reports: list[FileReport], halted: str | None = None) -> dict[str, Any]:
    files = []
    for r in reports:
        d = asdict(r)
        d["tokens"] = r.tokens
        files.append(d)
    return {"halted": halted, "files": files}


def failures(reports: list[FileReport]) -> list[FileReport]:
    return [r for r in reports if not r.ok]
