"""The status page (issue 19): server-rendered HTML from a snapshot. Pure.

No script at all (the machine may be offline, and nothing here needs one): a meta
refresh keeps it current, a GET form searches, links page. Every value that comes
from the store or the config is escaped (file names are user data). Readable on a
phone: one column, tables that scroll sideways.
"""

from __future__ import annotations

import html
import os
from datetime import datetime
from urllib.parse import urlencode

from mediasync.media.formats import MAX_PROJECT_BYTES
from mediasync.report.snapshot import STATE_ORDER, Snapshot
from mediasync.rules.units import human_bytes

PER_PAGE = 50
REFRESH = 30  # seconds between the page's own reloads

_CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;padding:.8em;max-width:72em;color:#222}
h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}
.muted{color:#666;font-size:.9em}.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}th,td{padding:.3em .5em;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}td.n,th.n{text-align:right;white-space:nowrap}
.banner{padding:.6em .8em;margin:.5em 0;border-radius:4px;background:#fde2e1;color:#611}
.warn{background:#fff3cd;color:#543}
.failed{color:#a00;font-weight:600}.waiting{color:#8a5a00}.synced{color:#176a2e}
form{display:flex;flex-wrap:wrap;gap:.4em;margin:.4em 0}input,select,button{font:inherit;
padding:.3em}input[type=search]{flex:1;min-width:10em}.path{overflow-wrap:anywhere}
table.files .path{min-width:10em}
nav a{margin-right:1em}
@media (max-width:600px){.opt{display:none}table.files tr{display:block;padding:.4em 0;
border-bottom:1px solid #ddd}table.files td{display:block;border:0;padding:.1em .3em}
table.files th{display:none}table.files td.next:not(:empty)::before{content:"next try: "}}
"""


def e(value: object) -> str:
    """Escaped for HTML text and attribute values (quotes too)."""
    return html.escape(str(value), quote=True)


def _when(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    stamp = datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    left = ts - now
    if left <= 0:
        return f"{stamp} (due)"
    if left < 3600:
        return f"{stamp} (in {left / 60:.0f} min)"
    return f"{stamp} (in {left / 3600:.1f} h)"


def _rel(path: str, folder: str) -> str:
    try:
        return os.path.relpath(path, folder)
    except ValueError:
        return path


def render(s: Snapshot, now: float, *, query: str = "", state: str = "", page: int = 1,
           note: str | None = None) -> str:
    """The whole page. ``note``: a line the endpoint adds (e.g. "too many requests")."""
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<meta http-equiv=refresh content={REFRESH}>",
        "<title>mediasync</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>mediasync</h1>",
        f"<p class=muted>as of {e(_when(s.taken_at, s.taken_at).split(' (')[0])}"
        f" · read in {s.took:.2f} s · refreshes every {REFRESH} s · "
        "<a href='/metrics'>metrics</a> · <a href='/healthz'>health</a></p>",
    ]
    if note:
        out.append(f"<p class='banner warn'>{e(note)}</p>")
    if s.halted:
        out.append(f"<p class=banner><b>HALTED:</b> {e(s.halted)}</p>")
    for folder, why in sorted(s.unavailable.items()):
        out.append(f"<p class='banner warn'><b>UNAVAILABLE:</b> {e(folder)} {e(why)}; nothing "
                   "in it counts as deleted until it is back</p>")
    for p in s.quota.get("paused", []):
        out.append(f"<p class='banner warn'><b>PAUSED:</b> {e(p.get('message'))}</p>")
    out += _folders(s)
    out += _spending(s)
    out += _storage(s)
    out += _not_done(s, now, query, state, page)
    out.append("</body></html>")
    return "\n".join(out)


def _folders(s: Snapshot) -> list[str]:
    cols = ("synced", "pending", "uploading", "processing", "waiting", "failed")
    opt = ("uploading", "processing")  # left out on a phone's width
    out = ["<h2>Folders</h2><div class=scroll><table><tr><th>folder</th>",
           *(f"<th class='n{' opt' if c in opt else ''}'>{c}</th>" for c in cols),
           "<th class='n opt'>sidecars</th></tr>"]
    for folder, counts in s.per_folder.items():
        written = s.outputs.get(folder, {}).get("written", 0)
        cells = "".join(
            f"<td class='n {c if counts.get(c) and c in ('failed', 'synced') else ''}"
            f"{' opt' if c in opt else ''}'>{counts.get(c, 0):,}</td>" for c in cols)
        out.append(f"<tr><td class=path>{e(folder)}</td>{cells}"
                   f"<td class='n opt'>{written:,}</td></tr>")
    out.append("</table></div>")
    return out


def _spending(s: Snapshot) -> list[str]:
    cap = s.quota.get("cap") or {}
    today = cap.get("today") or {}
    out = ["<h2>Today (Pacific day)</h2>"]
    cost = today.get("cost_usd")
    line = f"{today.get('tokens', 0):,} tokens"
    line += f" ({today.get('prompt', 0):,} prompt, {today.get('output', 0):,} output, "
    line += f"{today.get('thoughts', 0):,} thoughts)"
    line += " · estimated cost " + ("unknown (no price)" if cost is None else f"${cost:.4f}")
    caps = []
    if cap.get("max_daily_cost") is not None:
        caps.append(f"cap ${cap['max_daily_cost']:.2f}")
    if cap.get("max_daily_tokens") is not None:
        caps.append(f"cap {cap['max_daily_tokens']:,} tokens")
    if caps:
        line += " of " + " / ".join(caps)
    out.append(f"<p>{e(line)}</p>")
    if cap.get("reached"):
        out.append(f"<p class=banner>The {e(cap['reached'])} is reached: generation waits "
                   "until midnight Pacific.</p>")
    rows = []
    for model, spans in sorted(s.quota.get("costs", {}).items()):
        t = spans["today"]
        if not t["requests"]:
            continue
        c = "?" if t["cost_usd"] is None else f"${t['cost_usd']:.4f}"
        rows.append(f"<tr><td>{e(model)}</td><td class=n>{t['requests']:,}</td>"
                    f"<td class=n>{t['tokens']:,}</td><td class=n>{e(c)}</td></tr>")
    if rows:
        out += ["<div class=scroll><table><tr><th>model</th><th class=n>requests</th>"
                "<th class=n>tokens</th><th class=n>cost</th></tr>", *rows, "</table></div>"]
    return out


def _storage(s: Snapshot) -> list[str]:
    return [f"<p class=muted>Remote copies: {e(human_bytes(s.remote_bytes))} of the "
            f"project's {e(human_bytes(MAX_PROJECT_BYTES))} · state database "
            f"{e(human_bytes(s.store_bytes))}</p>"]


def _not_done(s: Snapshot, now: float, query: str, state: str, page: int) -> list[str]:
    page = max(1, page)
    rows, total = s.find(query, state, (page - 1) * PER_PAGE, PER_PAGE)
    options = "".join(
        f"<option value='{e(v)}'{' selected' if v == state else ''}>{e(v or 'any state')}"
        "</option>" for v in ("", *STATE_ORDER))
    out = [
        f"<h2>Not done ({len(s.not_done):,})</h2>",
        "<form method=get action='/'>"
        f"<input type=search name=q value='{e(query)}' placeholder='file name or reason'>"
        f"<select name=state>{options}</select><button>search</button></form>",
    ]
    if not rows:
        out.append("<p>Nothing here." + (" Every file is synced." if not s.not_done else "")
                   + "</p>")
        return out
    first = (page - 1) * PER_PAGE + 1
    out.append(f"<p class=muted>files {first:,}–{first + len(rows) - 1:,} of {total:,}</p>")
    out.append("<div class=scroll><table class=files><tr><th>file</th><th>state</th>"
               "<th>why</th><th>next try</th></tr>")
    for r in rows:
        out.append(
            f"<tr><td class=path title='{e(r.path)}'>{e(_rel(r.path, r.folder))}"
            f"<div class=muted>{e(r.folder)}</div></td>"
            f"<td class={e(r.state)}>{e(r.state)}</td><td>{e(r.message or '')}</td>"
            f"<td class=next>{e(_when(r.next_try, now)) if r.next_try else ''}</td></tr>")
    out.append("</table></div><nav>")
    base = {k: v for k, v in (("q", query), ("state", state)) if v}
    if page > 1:
        out.append(f"<a href='/?{e(urlencode({**base, 'page': page - 1}))}'>← previous</a>")
    if first + len(rows) - 1 < total:
        out.append(f"<a href='/?{e(urlencode({**base, 'page': page + 1}))}'>next →</a>")
    out.append("</nav>")
    return out
