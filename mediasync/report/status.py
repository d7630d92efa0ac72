"""What each file's state is, for `mediasync status` and the `sync` summary.

Reads the store only (read-only while the daemon runs) and the config for what
each file should have; renders text or JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mediasync.config import Config, FolderConfig
from mediasync.gemini.quota import PACIFIC, next_reset, pause_message
from mediasync.report import batches, costs
from mediasync.rules import availability, budget, desired, naming, rows, states, steps, units
from mediasync.rules.rows import CopyFacts, Outcome, OutputFacts, PathFacts
from mediasync.rules.states import Copy, Output
from mediasync.store import Meta, Store


# Slotted: `status` holds one of each per file and output (100,000s), without a
# __dict__ each.
@dataclass(slots=True)
class SidecarReport:
    name: str
    outcome: str  # written, kept_edit, blocked, incomplete, failed, waiting, writing, pending
    message: str | None = None
    tokens: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    thoughts_tokens: int = 0
    format: str = "text"  # text, json, xmp, subtitles
    model: str | None = None  # the model asked for
    model_version: str | None = None  # the model that wrote what is recorded (modelVersion)
    service_tier: str | None = None  # the tier that served it


@dataclass(slots=True)
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
    proxy: str | None = None  # "uploaded as a proxy (34 MB of 2.7 GB)" (media/proxy.py)
    sidecars: list[SidecarReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing left to do: synced, or skipped by choice (a link not followed)."""
        return self.state in ("synced", "skipped")

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.sidecars)


def _next_try(retry_at: float | None) -> str:
    """Transient failures say when the next try is (failures.py)."""
    if retry_at is None:
        return ""
    return f"; next try {units.minute_stamp(retry_at)}"


def _remote_state(r: FileReport, c: CopyFacts, now: float, renew_before: float) -> bool:
    """Fill the file's state from its remote copy; True when a copy serves now."""
    r.remote_name, r.expires_at = c.remote_name, c.expires_at
    if c.remote_name and c.remote_bytes is not None:
        r.proxy = (f"uploaded as a proxy ({units.human_bytes(c.remote_bytes)} of "
                   f"{units.human_bytes(c.size)})")
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
    Output.INCOMPLETE: ("incomplete", "incomplete"),
    Output.FAILED: ("failed", "failed"),
}


def _sidecar(o: OutputFacts | None, want: rows.Desired, sha: str, sidecar: str,
             held: str | None = None, batch: str | None = None) -> SidecarReport:
    """``want``: the folder's template (desired.templates), ``sidecar``: this file's
    path for it; ``held``: why its model or tier is held for the config, if it is;
    ``batch``: the batch job it waits in, if it does."""
    name = sidecar.rpartition("/")[2]  # os.path.basename: sidecar paths are absolute
    state = states.output_state(o, want, sha, sidecar)  # the engine's own decoder
    served = (o.model_version, o.service_tier) if o is not None else (None, None)
    if batch and state in (Output.MISSING, Output.STALE, Output.WAITING):
        return SidecarReport(name, "waiting", batch, format=want.format, model=want.model)
    if held and state not in (Output.WRITTEN, Output.KEPT_EDIT, Output.BLOCKED):
        return SidecarReport(name, "waiting", held, format=want.format, model=want.model,
                             model_version=served[0], service_tier=served[1])
    if o is None or state in (Output.MISSING, Output.STALE):
        return SidecarReport(name, "pending", _OUTPUT_WORDS[state][1], format=want.format,
                             model=want.model)
    outcome, fallback = _OUTPUT_WORDS.get(state, (o.outcome, None))
    message = o.message or fallback
    if state is Output.WAITING:
        message = f"{o.message or 'failed'}{_next_try(o.retry_at)}"
    elif state is Output.WRITING:
        message = fallback
    return SidecarReport(name, outcome, message, o.prompt_tokens + o.output_tokens
                         + o.thoughts_tokens, o.prompt_tokens, o.output_tokens,
                         o.thoughts_tokens, want.format, want.model, *served)


# What a sidecar's outcome makes of its file, when the remote copy is fine.
_FILE_STATE = {"failed": "failed", "blocked": "failed", "incomplete": "failed",
               "waiting": "waiting"}


NOT_KEPT = "captioned, copy not kept (storage budget)"


@dataclass(slots=True)
class _Folder:
    config: FolderConfig
    prefix: str  # of the paths in it
    kept_alive: bool


@dataclass(slots=True)
class _Pass:
    """What every file's report needs beside its own rows, worked out once a pass."""

    config: Config
    now: float
    kept: frozenset[str] | None  # the storage budget's plan (None: all fit)
    held: Mapping[str, str]
    batched: Mapping[tuple[str, str], str]  # (path, suffix) → the batch job it waits in
    halted: str | None = None
    unavailable: dict[str, str] = field(default_factory=dict)  # folder → why
    # A recorded folder → what its files share: Config.folder_for's answer without
    # its per-file search.
    folders: dict[str, _Folder] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in self.config.folders:
            root = str(f.path)
            self.folders[root] = _Folder(f, root if root.endswith("/") else root + "/",
                                         self.config.keeps_alive_in(f))

    def folder(self, row: PathFacts) -> _Folder | None:
        hit = self.folders.get(row.folder)
        if hit is not None and row.path.startswith(hit.prefix):
            return hit
        folder = self.config.folder_for(row.path)  # moved, or in no folder now
        if folder is None:
            return None
        return self.folders[str(folder.path)]


def _file(row: PathFacts, c: CopyFacts | None, mine: dict[str, OutputFacts], look: _Pass,
          stalled: str | None) -> FileReport:
    r = FileReport(row.path, row.folder, "pending")
    if row.problem:
        # Unreadable now (permissions, I/O) is transient; empty or too large is not.
        transient = row.problem.startswith(steps.READ_PROBLEM)
        r.state, r.message = ("waiting" if transient else "failed"), row.problem
        if row.problem.startswith(steps.SKIPPED):
            r.state, r.message = "skipped", row.problem[len(steps.SKIPPED):]
        return r
    config = look.config
    if c is None:
        serving = False
        r.message = "not uploaded yet"
    else:
        serving = _remote_state(r, c, look.now, config.daemon.renew_before)
        if r.state == "failed":
            return r
    # keep_alive = "on_use", or a copy beyond the storage budget: a copy is made only
    # for a generation, so with none under way the sidecars say what the file waits for.
    kept = look.kept
    beyond = kept is not None and (row.sha256 or "") not in kept
    folder = look.folder(row)
    kept_alive = folder.kept_alive if folder else config.keeps_alive_in(None)
    on_use = not kept_alive or beyond
    sidecars_first = serving or (on_use and r.state == "pending")
    if sidecars_first and not serving:
        r.message = None
    wants = desired.templates(folder.config, row.kind, config.api.model) if folder else ()
    complete = serving
    held, batched, path = look.held, look.batched, row.path
    for want in wants:
        s = _sidecar(mine.get(want.suffix), want, row.sha256 or "",
                     naming.sidecar_name(path, want.suffix),
                     _held_for(held, config, path, want) if held else None,
                     batched.get((path, want.suffix)) if batched else None)
        r.sidecars.append(s)
        if s.outcome in (Outcome.WRITTEN, Outcome.KEPT_EDIT):
            continue
        complete = False
        if sidecars_first and r.message is None:  # else the remote copy's reason comes first
            r.state = _FILE_STATE.get(s.outcome, "pending")
            r.message = f"{s.name}: {s.message}"
            if s.outcome == "waiting" and want.suffix in mine:
                r.next_try = mine[want.suffix].retry_at
    if complete:  # serving, and no sidecar moved the state from "pending"
        r.state, r.message = "synced", None
        if beyond and kept_alive:
            r.note = NOT_KEPT  # its copy lapses, or makes room
        return r
    verdicts = [s for s in r.sidecars if s.outcome in _VERDICTS]
    if not serving and r.sidecars and len(verdicts) == len(r.sidecars):
        # No copy is made for a file no output can take (too long): its outputs'
        # verdicts are its own, not "not uploaded yet".
        r.state, r.message = "failed", f"{verdicts[0].name}: {verdicts[0].message}"
    elif on_use and not serving and row.sha256 and r.state != "failed" and _wants_done(r):
        r.state, r.message, r.next_try = "synced", None, None
        r.note = (NOT_KEPT if kept_alive else
                  "no remote copy is kept (keep_alive = \"on_use\"); uploaded again when needed")
    elif stalled and r.state in ("pending", "uploading", "processing", "waiting"):
        r.message = f"waiting: {stalled}" + (f"; {r.message}" if r.message else "")
    return r


SEE_HELD = "(see HELD)"  # a file's reason when its model or tier is held: said once above


def _held_for(held: Mapping[str, str], config: Config, path: str,
              want: rows.Desired) -> str | None:
    """Why ``want`` waits, in short, when its model or tier is held (the HELD line, said
    once, carries the fix)."""
    if f"model:{want.model}" in held:
        return f"waiting for model {want.model}, which the service does not serve {SEE_HELD}"
    if any(k.startswith("tier:") for k in held):
        tier = config.knobs_for(Path(path), want.spec).service_tier
        if tier and f"tier:{tier}" in held:
            return f"waiting for service_tier \"{tier}\", refused for this key {SEE_HELD}"
    return None


def held(store: Store, config: Config | None = None) -> dict[str, str]:
    """Models the service does not serve and tiers the key may not use, each with its
    one line ("model X is not available: …"), as the engine keeps them (Meta.HELD).
    With ``config``: only those it still names (a reload may have fixed it)."""
    out: dict[str, str] = {}
    names = config.models() if config is not None else None
    for d in store.read(Meta.HELD):
        if not isinstance(d, dict) or not isinstance(d.get("key"), str):
            continue
        key, message = d["key"], str(d.get("message") or d["key"])
        if names is not None and key.startswith("model:") and key[6:] not in names:
            continue
        out[key] = message
    return out


# Sidecar outcomes that are a verdict on these bytes, not a wait.
_VERDICTS = ("failed", "blocked", "incomplete")


def _wants_done(r: FileReport) -> bool:
    return all(s.outcome in (Outcome.WRITTEN, Outcome.KEPT_EDIT) for s in r.sidecars)


def build(store: Store, config: Config, now: float | None = None,
          jobs: list[batches.JobReport] | None = None) -> list[FileReport]:
    """Every live path's state, with the reason for each one that is not synced.

    Halts and unavailable folders are read from the store, where the engine keeps
    them: `status`, `sync`'s summary and the STATUS line all see the same thing.
    """
    return list(each(store, config, now, jobs))


def reading(store: Store, config: Config, now: float,
            jobs: list[batches.JobReport] | None = None) -> _Pass:
    """What every file's report needs beside its own rows, read once: the halt, the
    folders away, the storage budget's plan, held models and tiers, batch jobs.
    ``jobs``: the open batch jobs, when the caller has read them already."""
    return _Pass(config, now, _kept(store, config), held(store, config),
                 batches.waiting_outputs(
                     store, batches.open_jobs(store, now) if jobs is None else jobs),
                 store.read(Meta.HALTED) or None, unavailable_folders(store))


def each(store: Store, config: Config, now: float | None = None,
         jobs: list[batches.JobReport] | None = None,
         paths: tuple[object, object] = (None, None),
         look: _Pass | None = None) -> Iterator[FileReport]:
    """``build``'s reports one at a time, in path order: the rows are read as they go
    (Store.report_files), so counting them (the daemon's STATUS line) holds no more
    than one file's in memory however large the library. ``jobs``: as for
    ``reading``; ``paths``: only those from the first stored path up to the second
    (Store.cut_paths; None: no bound); ``look``: ``reading``'s answer, when the
    caller has it (each range of report/split.py)."""
    if look is None:
        look = reading(store, config, time.time() if now is None else now, jobs)
    halted, unavailable = look.halted, look.unavailable
    why = None
    for row, content, outputs in store.report_files(*paths):
        if unavailable:
            # The innermost unavailable folder or disk mounted inside one that holds it.
            away = availability.unavailable_holding(row.path, unavailable)
            why = f"the folder {away} {unavailable[away]}" if away else None
        r = _file(row, content, outputs, look, halted or why)
        if why and r.state != "failed":
            # Out of sight, it cannot be called synced: its bytes or sidecars may have
            # changed on the pulled disk. It waits for the disk, whatever was recorded.
            r.state = "waiting"
            if not (r.message or "").startswith("waiting: "):
                r.message = f"waiting: {why}" + (f"; {r.message}" if r.message else "")
        yield r


def _kept(store: Store, config: Config) -> frozenset[str] | None:
    """The storage budget's plan, as the daemon makes it (rules/budget.py); None when
    the whole library fits, known from one sum without reading every row."""
    limit = store_limit(store, config)
    if store.library_fits(limit):
        return None
    return budget.kept(store.all_paths(), store.outputs_by_path(), config, limit)[0]


def store_limit(store: Store, config: Config) -> int:
    return budget.limit(config, store.read(Meta.STORE_SIZE), store.read(Meta.STORE_USAGE))


def store_state(store: Store, config: Config, now: float) -> dict[str, Any]:
    """The project's store for `status`: this instance's bytes (its database), other
    instances' and other uploads' (the last listing, or an estimate from a full store),
    the store's size and the budget. The caller adds ``not_kept``: how many files keep
    no copy because of it (``Part.not_kept``, or the reports' NOT_KEPT notes)."""
    usage = store.read(Meta.STORE_USAGE)
    mine = store.held_bytes(now)[0]
    return {
        "mine": mine,
        "other_instances": budget.others_bytes({"other_instances":
                                                usage.get("other_instances")}),
        "other_uploads": budget.others_bytes({"other_uploads": usage.get("other_uploads")}),
        "listed_at": usage.get("at"),
        "size": budget.store_size(store.read(Meta.STORE_SIZE)),
        "budget": store_limit(store, config),
    }


def render_store(s: dict[str, Any]) -> str:
    h = units.human_bytes
    listed = f" (listed {units.utc_stamp(s['listed_at'])})" if s.get("listed_at") else ""
    line = (f"store: {h(s['mine'])} used by this instance, {h(s['other_instances'])} by other "
            f"mediasync instances, {h(s['other_uploads'])} by other uploads{listed}; "
            f"budget {h(s['budget'])} of {h(s['size'])}")
    if s["not_kept"]:
        line += f"; {s['not_kept']} file(s) {NOT_KEPT}"
    return line


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
    when = units.utc_stamp(rec["at"])
    line = f"RECOVERED {when}: {rec['what']}"
    return line + ("; still meeting the files again" if rec["pending"] else "")


def unavailable_folders(store: Store) -> dict[str, str]:
    """folder → why it cannot be read now (a pulled disk, a share not answering)."""
    return store.read(Meta.UNAVAILABLE)


def counts(reports: Iterable[FileReport]) -> dict[str, int]:
    """Files per state (the STATUS line and `status` read the same decoder)."""
    out: dict[str, int] = {}
    for r in reports:
        out[r.state] = out.get(r.state, 0) + 1
    return out


def _when(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    left = ts - now
    stamp = units.minute_stamp(ts)
    return f"{stamp} (in {left / 3600:.1f} h)" if left > 0 else f"{stamp} (expired)"


@dataclass
class Part:
    """What the text of `status` says of some of the files (a range of paths): per
    configured folder, the files per state, the tokens, and with ``verbose`` each
    file's lines; and how many keep no copy because of the storage budget. Parts of
    consecutive ranges join into the whole (``render_parts``)."""

    counts: dict[str, dict[str, int]]  # folder → state → files
    tokens: dict[str, dict[str, int]]  # folder → prompt, output, thoughts
    lines: dict[str, list[str]]  # folder → its files' lines, in path order
    not_kept: int = 0


def summarise(reports: Iterable[FileReport], config: Config, now: float,
              verbose: bool = True) -> Part:
    roots = [str(f.path) for f in config.folders]
    part = Part({r: {} for r in roots}, {r: {"prompt": 0, "output": 0, "thoughts": 0}
                                         for r in roots}, {r: [] for r in roots})
    for r in reports:
        if r.note == NOT_KEPT:
            part.not_kept += 1
        counted = part.counts.get(r.folder)
        if counted is None:  # a folder no longer configured: the text leaves it out
            continue
        counted[r.state] = counted.get(r.state, 0) + 1
        _add_tokens(part.tokens[r.folder], r)
        if verbose:
            _file_lines(r, r.folder, now, part.lines[r.folder])
    return part


def render_text(reports: list[FileReport], config: Config, now: float, halted: str | None = None,
                *, verbose: bool = True, holds: Mapping[str, str] | None = None,
                jobs: list[batches.JobReport] | None = None) -> str:
    return render_parts([summarise(reports, config, now, verbose)], config, halted,
                        holds=holds, jobs=jobs)


def render_parts(parts: list[Part], config: Config, halted: str | None = None, *,
                 holds: Mapping[str, str] | None = None,
                 jobs: list[batches.JobReport] | None = None) -> str:
    """`status`'s text from the parts of consecutive ranges of paths, in their order."""
    lines = []
    if halted:
        lines.append(f"HALTED: {halted}")
    lines += batches.render(jobs or [])
    # One line per held model or tier, not one per file (their files say "waiting").
    lines += [f"HELD: {message}" for message in (holds or {}).values()]
    for folder in config.folders:
        root = str(folder.path)
        states: dict[str, int] = {}
        t = {"prompt": 0, "output": 0, "thoughts": 0}
        for part in parts:
            for state, n in part.counts.get(root, {}).items():
                states[state] = states.get(state, 0) + n
            for kind, n in part.tokens.get(root, {}).items():
                t[kind] += n
        summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no media files"
        lines.append(
            f"{folder.path}: {summary}; {sum(t.values())} tokens used "
            f"({t['prompt']} prompt, {t['output']} output, {t['thoughts']} thoughts)"
        )
        for part in parts:
            lines += part.lines.get(root, ())
    return "\n".join(lines)


def _file_lines(r: FileReport, root: str, now: float, lines: list[str]) -> None:
    add = lines.append
    rel = naming.shown(naming.relative(r.path, root))
    detail = r.state
    if r.upload_progress:
        detail += f" {r.upload_progress}"
    if r.remote_name:
        detail += f" · {r.remote_name} expires {_when(r.expires_at, now)}"
    add(f"  {rel}: {detail}")
    if r.message:
        add(f"      {r.message}")
    if r.note:
        add(f"      {r.note}")
    if r.proxy:
        add(f"      {r.proxy}")
    for s in r.sidecars:
        # A written sidecar's message is a note (cues mended, an answer shared).
        extra = f" ({s.message})" if s.message else ""
        kind = f" [{s.format}]" if s.format != "text" else ""
        said = _OUTCOME_WORDS.get(s.outcome) or s.outcome.replace("_", " ")
        add(f"      {naming.shown(s.name)}{kind}: {said}{extra}{_provenance(s)}")


_OUTCOME_WORDS = {o.value: o.value.replace("_", " ") for o in Outcome}


def _provenance(s: SidecarReport) -> str:
    """What wrote a sidecar, when it is not simply the model asked for at standard."""
    if s.outcome not in (Outcome.WRITTEN, Outcome.KEPT_EDIT) or s.model_version is None:
        return ""
    bits = []
    if s.model and s.model_version != s.model:
        bits.append(f"by {s.model_version}")
    if s.service_tier and s.service_tier != "standard":
        bits.append(s.service_tier)
    return f" [{', '.join(bits)}]" if bits else ""


def render_json(reports: list[FileReport], halted: str | None = None,
                holds: Mapping[str, str] | None = None,
                jobs: list[batches.JobReport] | None = None) -> dict[str, Any]:
    held_list = [{"key": k, "message": m} for k, m in (holds or {}).items()]
    return {"halted": halted, "held": held_list, "tokens": token_totals(reports),
            "batch_jobs": [j.to_json() for j in jobs or []],
            "files": [_file_json(r) for r in reports]}


def _file_json(r: FileReport) -> dict[str, Any]:
    d = as_json_dict(r)
    d["tokens"] = r.tokens
    # A name that is not UTF-8 is shown escaped (\\xe9), as in the text form.
    d["path"] = naming.shown(r.path)
    for side in d["sidecars"]:
        side["name"] = naming.shown(side["name"])
    return d


@dataclass
class JsonPart:
    """``render_json``'s files of a range of paths, already written as JSON: each as
    ``json.dumps(doc, indent=indent)`` writes it inside the document's "files"."""

    files: list[str]
    tokens: dict[str, int]
    not_kept: int = 0


def json_part(reports: Iterable[FileReport], indent: int | None) -> JsonPart:
    part = JsonPart([], {"prompt": 0, "output": 0, "thoughts": 0})
    depth = "\n" + " " * (2 * indent) if indent else None  # "files" is one level down
    t = part.tokens
    for r in reports:
        if r.note == NOT_KEPT:
            part.not_kept += 1
        _add_tokens(t, r)
        text = json.dumps(_file_json(r), indent=indent)
        part.files.append(text.replace("\n", depth) if depth else text)
    return part


def files_json(parts: list[JsonPart], indent: int | None) -> str:
    """The "files" array of the parts of consecutive ranges, as ``json.dumps`` of the
    whole document writes it (``JsonPart``)."""
    files = [f for part in parts for f in part.files]
    if not files:
        return "[]"
    if not indent:
        return "[" + ", ".join(files) + "]"
    inner, outer = " " * (2 * indent), " " * indent
    return f"[\n{inner}" + f",\n{inner}".join(files) + f"\n{outer}]"


_PLAIN = (str, int, float, bool, type(None))
_NAMES: dict[type, tuple[str, ...]] = {}  # a report class's field names, looked up once


def as_json_dict(obj: Any) -> Any:
    """``dataclasses.asdict`` for reports (its deep copies cost more than the rest of
    `status --json` together): the same dict, fields in order, nested reports too."""
    if not is_dataclass(obj) or isinstance(obj, type):
        return obj
    names = _NAMES.get(type(obj))
    if names is None:
        names = _NAMES[type(obj)] = tuple(f.name for f in fields(obj))
    out = {}
    for name in names:
        value = getattr(obj, name)
        if type(value) in _PLAIN:
            pass
        elif isinstance(value, list):
            value = [as_json_dict(v) for v in value]
        elif isinstance(value, (dict, tuple)) or is_dataclass(value):
            value = asdict(obj)[name]  # not the plain values reports hold today
        out[name] = value
    return out


def token_totals(reports: list[FileReport]) -> dict[str, int]:
    """Prompt, output and thought tokens (thoughts are billed as output)."""
    t = {"prompt": 0, "output": 0, "thoughts": 0}
    for r in reports:
        _add_tokens(t, r)
    return t


def _add_tokens(t: dict[str, int], r: FileReport) -> None:
    for s in r.sidecars:  # summed here, not by kind per report: 100,000 reports
        t["prompt"] += s.prompt_tokens
        t["output"] += s.output_tokens
        t["thoughts"] += s.thoughts_tokens


def failures(reports: list[FileReport]) -> list[FileReport]:
    return [r for r in reports if not r.ok]


# -- quotas and costs (issue 9) ---------------------------------------------------
def quota_state(store: Store, config: Config, now: float) -> dict[str, Any]:
    """Active pauses (persisted by the daemon) and spend per model, for `status`.

    The pauses are read here rather than through apiclient.load_pauses: `status`
    stays free of the HTTP client, and one unreadable entry spoils no other."""
    def pause(model: Any, what: Any, resume: float) -> dict[str, Any]:
        return {
            "model": model,
            "quota": what,
            "resume_at": resume,
            "resume_at_pt": datetime.fromtimestamp(min(resume, units.LATEST_SHOWN),
                                                   PACIFIC).isoformat(),
            "message": pause_message(str(model), str(what), resume, now),
        }

    paused = []
    for p in store.read(Meta.QUOTA_PAUSES):
        try:
            resume = float(p["resume_at"])
        except (KeyError, TypeError, ValueError):
            continue
        # The owner's cap is read from the config below, never from an old pause.
        if resume <= now or p.get("class") == "generate:*":
            continue
        paused.append(pause(p.get("model"), p.get("what"), resume))
    usage = store.usage()
    summ = costs.summary(usage, config.prices, now)
    spent = costs.today(usage, config.prices, now)
    holds = costs.cap_holds(spent, usage, config.prices, config.limits, config.api.model)
    if holds is not None:
        paused.append(pause("all models", holds, next_reset(now)))
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
