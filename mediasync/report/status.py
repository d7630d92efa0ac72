"""What each file's state is, for `mediasync status` and the `sync` summary.

Reads the store only (read-only while the daemon runs) and the config for what
each file should have; renders text or JSON.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mediasync.config import Config
from mediasync.gemini.quota import PACIFIC, pause_message
from mediasync.report import costs
from mediasync.rules import availability, desired, naming, rows, states, steps, units
from mediasync.rules.rows import ContentRow, Outcome, OutputRow, PathRow
from mediasync.rules.states import Copy, Output
from mediasync.store import Meta, Store


@dataclass
class SidecarReport:
    name: str
    outcome: str  # written, kept_edit, blocked, failed, waiting, writing, pending
    message: str | None = None
    tokens: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    thoughts_tokens: int = 0
    format: str = "text"  # text, json, xmp, subtitles


@dataclass
class FileReport:
    path: str
    folder: str
    state: str  # synced, pending, uploading, processing, waiting, failed, skipped
    message: str | None = None  # why it is not synced: never empty unless synced
    remote_name: str | None = None
    expires_at: float | None = None
    upload_progress: str | None = None
    note: str | None = None  # e.g. a renewal failed while the working copy still serves
    next_try: float | None = None  # when a waiting file is tried again (epoch seconds)
    sidecars: list[SidecarReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing left to do: synced, or skipped by choice (a link not followed)."""
        return self.state in ("synced", "skipped")

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.sidecars)

    def tokens_by_kind(self) -> dict[str, int]:
        return {
            "prompt": sum(s.prompt_tokens for s in self.sidecars),
            "output": sum(s.output_tokens for s in self.sidecars),
            "thoughts": sum(s.thoughts_tokens for s in self.sidecars),
        }


def _next_try(retry_at: float | None) -> str:
    """Transient failures say when the next try is (failures.py)."""
    if retry_at is None:
        return ""
    return f"; next try {datetime.fromtimestamp(retry_at, UTC).strftime('%Y-%m-%d %H:%M UTC')}"


def _remote_state(r: FileReport, c: ContentRow, now: float, renew_before: float) -> bool:
    """Fill the file's state from its remote copy; True when a copy serves now."""
    r.remote_name, r.expires_at = c.remote_name, c.expires_at
    state = states.copy_state(c, now, renew_before)
    if state in (Copy.SERVING, Copy.RENEWING):
        if c.error:  # a working copy outranks a failed renewal (failures.py)
            r.note = f"{c.error}{_next_try(c.retry_at)}"
        return True
    if state is Copy.FAILED:
        r.state, r.message = "failed", c.error
    elif state is Copy.WAITING:
        r.state, r.next_try = "waiting", c.retry_at
        r.message = f"{c.error or 'waiting'}{_next_try(c.retry_at)}"
    elif state is Copy.UPLOADING:
        r.state = "uploading"
        sent = units.human_bytes(c.next_offset or 0)
        r.upload_progress = f"{sent} of {units.human_bytes(c.size)}"
        r.message = (f"uploading: {r.upload_progress} sent; an interrupted upload resumes "
                     "where it stopped")
    elif state is Copy.PROCESSING:
        r.state = "processing"
        r.message = f"the service is still processing the upload ({c.next_name})"
    elif state is Copy.EXPIRED:
        r.message = "the remote copy expired; it will be uploaded again"
    else:
        r.message = "not uploaded yet"
    return False


# How `status` words each output state (states.Output); the message recorded
# with the outcome, where there is one, says more.
_OUTPUT_WORDS = {
    Output.MISSING: ("pending", "not generated yet"),
    Output.STALE: ("pending", "the file, the prompt or the model changed; to be generated again"),
    Output.WRITING: ("writing", "a write was interrupted; it will be written again"),
    Output.WAITING: ("waiting", None),
    Output.BLOCKED: ("blocked", "blocked"),
    Output.FAILED: ("failed", "failed"),
}


def _sidecar(o: OutputRow | None, want: rows.Desired, sha: str, now: float) -> SidecarReport:
    name = Path(want.sidecar).name
    state = states.output_state(o, want, sha)  # the engine's own decoder
    if o is None or state in (Output.MISSING, Output.STALE):
        return SidecarReport(name, "pending", _OUTPUT_WORDS[state][1], format=want.format)
    outcome, fallback = _OUTPUT_WORDS.get(state, (o.outcome, None))
    message = o.message or fallback
    if state is Output.WAITING:
        message = f"{o.message or 'failed'}{_next_try(o.retry_at)}"
    elif state is Output.WRITING:
        message = fallback
    return SidecarReport(name, outcome, message, o.prompt_tokens + o.output_tokens
                         + o.thoughts_tokens, o.prompt_tokens, o.output_tokens,
                         o.thoughts_tokens, want.format)


# What a sidecar's outcome makes of its file, when the remote copy is fine.
_FILE_STATE = {"failed": "failed", "blocked": "failed", "waiting": "waiting"}


def _file(row: PathRow, c: ContentRow | None, mine: dict[str, OutputRow], config: Config,
          stalled: str | None, now: float) -> FileReport:
    r = FileReport(path=row.path, folder=row.folder, state="pending")
    if row.problem:
        # Unreadable now (permissions, I/O) is transient; empty or too large is not.
        transient = row.problem.startswith(steps.READ_PROBLEM)
        r.state, r.message = ("waiting" if transient else "failed"), row.problem
        if row.problem.startswith(steps.SKIPPED):
            r.state, r.message = "skipped", row.problem[len(steps.SKIPPED):]
        return r
    renew_before = config.daemon.renew_before
    serving = _remote_state(r, c, now, renew_before) if c is not None else False
    if c is None:
        r.message = "not uploaded yet"
    if r.state == "failed":
        return r
    # keep_alive = "on_use": a copy is made only for a generation, so with none under
    # way the sidecars say what the file waits for.
    on_use = not config.keeps_alive(Path(row.path))
    sidecars_first = serving or (on_use and r.state == "pending")
    if sidecars_first and not serving:
        r.message = None
    folder = config.folder_for(Path(row.path))
    wants = desired.desired(folder, row.path, row.kind, config.api.model) if folder else []
    complete = serving
    for want in wants:
        s = _sidecar(mine.get(want.suffix), want, row.sha256 or "", now)
        r.sidecars.append(s)
        if s.outcome in (Outcome.WRITTEN, Outcome.KEPT_EDIT):
            continue
        complete = False
        if sidecars_first and r.message is None:  # else the remote copy's reason comes first
            r.state = _FILE_STATE.get(s.outcome, "pending")
            r.message = f"{s.name}: {s.message}"
            if s.outcome == "waiting":
                r.next_try = mine[want.suffix].retry_at
    if complete and r.state == "pending":
        r.state, r.message = "synced", None
    elif on_use and not serving and row.sha256 and r.state != "failed" and _wants_done(r):
        r.state, r.message, r.next_try = "synced", None, None
        r.note = "no remote copy is kept (keep_alive = \"on_use\"); uploaded again when needed"
    elif stalled and r.state in ("pending", "uploading", "processing", "waiting"):
        r.message = f"waiting: {stalled}" + (f"; {r.message}" if r.message else "")
    return r


def _wants_done(r: FileReport) -> bool:
    return all(s.outcome in (Outcome.WRITTEN, Outcome.KEPT_EDIT) for s in r.sidecars)


def build(store: Store, config: Config, now: float | None = None) -> list[FileReport]:
    """Every live path's state, with the reason for each one that is not synced.

    Halts and unavailable folders are read from the store, where the engine keeps
    them: `status`, `sync`'s summary and the STATUS line all see the same thing.
    """
    now = time.time() if now is None else now
    halted = store.read(Meta.HALTED) or None
    unavailable = unavailable_folders(store)
    contents = {c.sha256: c for c in store.all_contents()}
    outputs: dict[str, dict[str, OutputRow]] = {}
    for o in store.all_outputs():
        outputs.setdefault(o.path, {})[o.suffix] = o
    reports = []
    for row in store.all_paths():
        if row.gone_at is not None:
            continue
        # The innermost unavailable folder or disk mounted inside one that holds it.
        away = availability.unavailable_holding(row.path, unavailable)
        why = f"the folder {away} {unavailable[away]}" if away else None
        r = _file(row, contents.get(row.sha256 or ""), outputs.get(row.path, {}),
                  config, halted or why, now)
        if why and r.state != "failed":
            # Out of sight, it cannot be called synced: its bytes or sidecars may have
            # changed on the pulled disk. It waits for the disk, whatever was recorded.
            r.state = "waiting"
            if not (r.message or "").startswith("waiting: "):
                r.message = f"waiting: {why}" + (f"; {r.message}" if r.message else "")
        reports.append(r)
    return reports


RECOVERY_SHOWN = 7 * 86400.0  # seconds `status` tells of a rebuilt database


def recovery(store: Store, now: float) -> dict[str, Any] | None:
    """The state database's last rebuild or write-back (app/statedir.py), while recent."""
    rec = store.read(Meta.RECOVERY)
    try:
        at = float(rec["at"])
    except (KeyError, TypeError, ValueError):
        return None
    if now - at > RECOVERY_SHOWN and not rec.get("pending"):
        return None
    return {"at": at, "what": str(rec.get("what") or "rebuilt"),
            "pending": bool(rec.get("pending"))}


def render_recovery(rec: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(rec["at"], UTC).strftime("%Y-%m-%d %H:%M UTC")
    line = f"RECOVERED {when}: {rec['what']}"
    return line + ("; still meeting the files again" if rec["pending"] else "")


def unavailable_folders(store: Store) -> dict[str, str]:
    """folder → why it cannot be read now (a pulled disk, a share not answering)."""
    return store.read(Meta.UNAVAILABLE)


def counts(reports: list[FileReport]) -> dict[str, int]:
    """Files per state (the STATUS line and `status` read the same decoder)."""
    out: dict[str, int] = {}
    for r in reports:
        out[r.state] = out.get(r.state, 0) + 1
    return out


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
        t = token_totals(mine)
        summary = (", ".join(f"{n} {s}" for s, n in sorted(counts(mine).items()))
                   or "no media files")
        lines.append(
            f"{folder.path}: {summary}; {sum(t.values())} tokens used "
            f"({t['prompt']} prompt, {t['output']} output, {t['thoughts']} thoughts)"
        )
        if not verbose:
            continue
        for r in mine:
            rel = naming.shown(os.path.relpath(r.path, folder.path))
            detail = r.state
            if r.upload_progress:
                detail += f" {r.upload_progress}"
            if r.remote_name:
                detail += f" · {r.remote_name} expires {_when(r.expires_at, now)}"
            lines.append(f"  {rel}: {detail}")
            for text in (r.message, r.note):
                if text:
                    lines.append(f"      {text}")
            for s in r.sidecars:
                extra = f" ({s.message})" if s.message and s.outcome != Outcome.WRITTEN else ""
                kind = f" [{s.format}]" if s.format != "text" else ""
                lines.append(f"      {naming.shown(s.name)}{kind}: "
                             f"{s.outcome.replace('_', ' ')}{extra}")
    return "\n".join(lines)


def render_json(reports: list[FileReport], halted: str | None = None) -> dict[str, Any]:
    files = []
    for r in reports:
        d = asdict(r)
        d["tokens"] = r.tokens
        # A name that is not UTF-8 is shown escaped (\\xe9), as in the text form.
        d["path"] = naming.shown(r.path)
        for side in d["sidecars"]:
            side["name"] = naming.shown(side["name"])
        files.append(d)
    return {"halted": halted, "tokens": token_totals(reports), "files": files}


def token_totals(reports: list[FileReport]) -> dict[str, int]:
    """Prompt, output and thought tokens (thoughts are billed as output)."""
    total = {"prompt": 0, "output": 0, "thoughts": 0}
    for r in reports:
        for k, v in r.tokens_by_kind().items():
            total[k] += v
    return total


def failures(reports: list[FileReport]) -> list[FileReport]:
    return [r for r in reports if not r.ok]


# -- quotas and costs (issue 9) ---------------------------------------------------
def quota_state(store: Store, config: Config, now: float) -> dict[str, Any]:
    """Active pauses (persisted by the daemon) and spend per model, for `status`.

    The pauses are read here rather than through apiclient.load_pauses: `status`
    stays free of the HTTP client, and one unreadable entry spoils no other."""
    paused = []
    for p in store.read(Meta.QUOTA_PAUSES):
        try:
            resume = float(p["resume_at"])
        except (KeyError, TypeError, ValueError):
            continue
        if resume <= now:
            continue
        paused.append({
            "model": p.get("model"),
            "quota": p.get("what"),
            "resume_at": resume,
            "resume_at_pt": datetime.fromtimestamp(resume, PACIFIC).isoformat(),
            "message": pause_message(str(p.get("model")), str(p.get("what")), resume, now),
        })
    usage = store.usage()
    summ = costs.summary(usage, config.prices, now)
    spent = costs.today(usage, config.prices, now)
    return {
        "paused": paused,
        "costs": {m: {k: v.to_json() for k, v in spans.items()} for m, spans in summ.items()},
        "cap": {"max_daily_tokens": config.limits.max_daily_tokens,
                "max_daily_cost": config.limits.max_daily_cost,
                "today": spent.to_json(),
                "reached": costs.cap_reached(spent, config.limits)},
    }


def render_quota(state: dict[str, Any]) -> list[str]:
    lines = [f"PAUSED: {p['message']}" for p in state["paused"]]
    summ = {m: {k: costs.Spend(v["requests"], v["prompt"], v["output"], v["thoughts"],
                               v["cost_usd"]) for k, v in spans.items()}
            for m, spans in state["costs"].items()}
    lines += costs.render(summ)
    return lines


def status_line(folders: int, states: Mapping[str, int], halted: str | None = None) -> str:
    """The one-line summary for systemd's STATUS= and the log, from `status`'s own
    per-file states (counts), so both always agree."""
    busy = states.get("uploading", 0) + states.get("processing", 0)
    line = (
        f"watching {folders} folder{'s' if folders != 1 else ''} · "
        f"{states.get('synced', 0)} synced · {busy} uploading · "
        f"{states.get('pending', 0)} pending · {states.get('waiting', 0)} waiting · "
        f"{states.get('failed', 0)} failed"
    )
    if states.get("skipped"):
        line += f" · {states['skipped']} skipped"
    return f"{line} · {halted}" if halted else line
