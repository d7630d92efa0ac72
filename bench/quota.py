"""Quotas and idle traffic (issue 9), side by side in one run.

    .venv/bin/python bench/quota.py                      # every part
    .venv/bin/python bench/quota.py --parts 1,3 --count 200

1. paid key: default config, emulator allowing 1,000 generate calls a minute per
   model, N images (200), 0.5 s model latency; `mediasync sync` wall time vs the
   sequential google-genai SDK script of bench/pipeline.py (target: <= 1/6).
2. free tier: emulator allowing 10 a minute, 60 images, default config (nothing
   pinned: mediasync learns the limit); throughput vs the limit and refused calls
   (target: within 10 %, at most 2 refused).
3. day quota of 20 per model, two prompts on two models, 30 images: `sync` (exits
   5), then the daemon runs for a while; refused generate calls per model after
   the quota was used (target: at most 1 per model), and what `status --json` says.
4. idle: the real daemon (`mediasync run`) over S synced files (1,000) on a clock
   2,160 times faster (the 42 h renewal period is 70 s: emulator --ttl 200 s with
   renew_before 130 s; refresh_every 10 s; the file-request budget scaled alike)
   for 7 simulated days, every request counted
   on the emulator; scaled to M files (10,000), with one listing of M copies
   measured for its page count. Requests per simulated day, by endpoint.
4o. the same with `keep_alive = "on_use"`: copies lapse once their sidecars are
   written (no renewals); the target of 1,000 a day counts every request.
4b. tokens: 200 captions with the default config and with `thinking_budget = 0`,
   same images, one emulator: prompt, output and thought tokens and the
   estimated cost from `status --json`, and the saving.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    ROOT,
    EmulatorProcess,
    bench_env,
    command_line,
    count_sidecars,
    machine,
    mediasync_cmd,
    request_delta,
    run_cli,
    start_daemon,
    stop_daemon,
    sync_once,
    wait_for_log,
    write_config,
    write_pngs,
)
from pipeline import run_sdk


def part1(work: Path, count: int) -> dict:
    sdk = run_sdk(work, count, 0.5)
    sub = work / "p1"
    folder = sub / "media"
    write_pngs(folder, count)
    with EmulatorProcess(sub, generate_latency=0.5, name="emu",
                         flags=["--quota-rpm", "1000", "--quota-tier", "paid"]) as emu:
        cfg = write_config(sub, emu.url, folder, settle="0s")
        code, seconds = run_cli(cfg, "sync", log=sub / "sync.log", timeout=3600)
        refused = emu.stats()["quota"]["refused"]
    return {"sdk_s": sdk["seconds"], "ms_s": seconds, "exit": code,
            "sidecars": count_sidecars(folder), "refused": refused,
            "ratio": seconds / sdk["seconds"]}


def part2(work: Path, count: int) -> dict:
    sub = work / "p2"
    folder = sub / "media"
    write_pngs(folder, count)
    with EmulatorProcess(sub, generate_latency=0.5, flags=["--quota-rpm", "10"], name="emu") as emu:
        cfg = write_config(sub, emu.url, folder, settle="0s")
        code, seconds = run_cli(cfg, "sync", log=sub / "sync.log", timeout=3600)
        q = emu.stats()["quota"]
    # The sliding minute admits 10 at once, then 10 per 60 s (+1 s of margin):
    ideal = (count / 10 - 1) * 60
    return {"exit": code, "seconds": seconds, "sidecars": count_sidecars(folder),
            "refused": sum(q["refused"].get("gemini-2.5-flash", {}).values()),
            "per_min": count / seconds * 60, "ideal_s": ideal,
            "vs_ideal": seconds / ideal - 1}


PROMPTS_TWO_MODELS = """
  [[folders.prompts]]
  kinds = ["image"]
  prompt = "Caption this image in one sentence."
  sidecar = ".caption.md"

  [[folders.prompts]]
  kinds = ["image"]
  prompt = "List the objects in this image."
  sidecar = ".objects.md"
  model = "gemini-2.0-flash"
"""


def part3(work: Path, count: int, run_for: float) -> dict:
    sub = work / "p3"
    folder = sub / "media"
    write_pngs(folder, count)
    with EmulatorProcess(sub, generate_latency=0.1, flags=["--quota-rpd", "20"], name="emu") as emu:
        cfg = write_config(sub, emu.url, folder, settle="0s")  # current defaults
        cfg.write_text(cfg.read_text() + PROMPTS_TWO_MODELS)
        code, seconds = run_cli(cfg, "sync", log=sub / "sync.log", timeout=600)
        after_sync = emu.stats()["quota"]
        proc = start_daemon(cfg, sub / "run.log")
        time.sleep(run_for)
        stop_daemon(proc)
        after_run = emu.stats()["quota"]
        st = _status(cfg)
    stderr = (sub / "sync.log").read_text()
    line = next((ln for ln in stderr.splitlines() if "daily quota" in ln), "")
    return {"exit": code, "after_sync": after_sync, "after_run": after_run,
            "paused": st.get("paused"), "log": line.strip()}


def _listing_pages(work: Path, files: int) -> dict:
    """One listing over ``files`` remote copies (filled through the real client)."""
    from mediasync.gemini import GeminiClient

    sub = work / "p4-list"
    sub.mkdir()
    with EmulatorProcess(sub, name="emu") as emu:
        src = sub / "one.png"
        src.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 64)

        async def fill() -> None:
            async with GeminiClient("bench", emu.url) as c:
                sem = asyncio.Semaphore(32)

                async def one(i: int) -> None:
                    async with sem:
                        await c.upload(src, "image/png", f"mediasync:{i:016x}:one.png")
                await asyncio.gather(*(one(i) for i in range(files)))

        t0 = time.perf_counter()
        asyncio.run(fill())
        fill_s = time.perf_counter() - t0

        async def listing() -> int:
            async with GeminiClient("bench", emu.url) as c:
                return len(await c.list_files())

        before = emu.requests()
        listed = asyncio.run(listing())
        pages = request_delta(before, emu.requests()).get("list", 0)
    return {"listed": listed, "fill_s": fill_s, "pages": pages}


def _sim(seconds: float, speed: float) -> str:
    """A default duration on the compressed clock, as a config string."""
    return f"{seconds / speed:.6g}s"


def part4(work: Path, files: int, sim_files: int, speed: float, days: float,
          keep_alive: str = "always", listing: dict | None = None) -> dict:
    """Idle traffic: the real daemon (`mediasync run`) over ``sim_files`` synced files on
    a clock ``speed`` times faster (renewal period, refresh interval and file-request
    budget scaled alike), every request counted on the emulator for
    ``days`` simulated days; plus one listing over ``files`` copies for the page count."""
    from mediasync.config import DEFAULT_DAEMON, parse_duration
    from mediasync.media.formats import FILE_TTL_SECONDS
    from mediasync.rules.states import MIN_USABLE_SECONDS

    listing = listing or _listing_pages(work, files)
    sub = work / f"p4-{keep_alive}"
    folder = sub / "media"
    write_pngs(folder, sim_files)
    d = {k: parse_duration(DEFAULT_DAEMON[k]) for k in
         ("refresh_every", "renew_before", "rescan_every")}
    # What sets the count is the renewal period (lifetime - renew_before) and the
    # refresh interval; both are scaled. The lead time is not: a copy with under
    # MIN_USABLE_SECONDS left is no longer used or renewed, so the scaled lead keeps
    # a floor above it (the lifetime grows by as much, the period stays scaled).
    period = (FILE_TTL_SECONDS - d["renew_before"]) / speed
    lead = max(d["renew_before"] / speed, MIN_USABLE_SECONDS + 10)
    ttl = period + lead
    with EmulatorProcess(sub, flags=["--ttl", f"{ttl:.6g}s"], name="emu") as emu:
        scaled = {"refresh_every": _sim(d["refresh_every"], speed),
                  "renew_before": f"{lead:.6g}s"}
        sync_once(sub, emu.url, folder, sim_files, keep_alive=keep_alive, **scaled)
        cfg = write_config(
            sub, emu.url, folder, settle="0s", keep_alive=keep_alive, **scaled,
            # A rescan makes no API call (local stat only); scaled it would walk the
            # folder many times a second, so it keeps a floor of 5 s.
            rescan_every=_sim(max(d["rescan_every"], 5 * speed), speed),
            # Pacing is scaled with the clock: it decides when requests go, not how many.
            requests_per_minute=int(int(DEFAULT_DAEMON["requests_per_minute"]) * speed))
        log_path = sub / "run.log"
        proc = start_daemon(cfg, log_path)
        try:
            wait_for_log(log_path, r"watching \d+ folder", timeout=300)
            # Counted from the end of start-up (its one listing is not periodic).
            before = emu.requests()
            t0 = time.monotonic()
            window = days * 86400 / speed
            time.sleep(window)
            after = emu.requests()
            elapsed = time.monotonic() - t0
        finally:
            stop_daemon(proc)
    sim_days = elapsed * speed / 86400
    counted = request_delta(before, after)
    per_day = {k: v / sim_days for k, v in counted.items() if k != "control"}
    scale = files / sim_files
    refreshes = 86400 / d["refresh_every"]
    # Scaled to ``files``: a listing is ceil(files / 100) pages (measured above), every
    # other request is per copy.
    at_files = {k: (refreshes * listing["pages"] if k == "list" else v * scale)
                for k, v in per_day.items()}
    renewal_period = FILE_TTL_SECONDS - d["renew_before"]
    # A window holds whole renewal rounds only, so the observed rate is quantized;
    # the steady state is the measured cost of one renewal times the schedule's rate.
    renewed = counted.get("start", 0)
    renewal_kinds = ("start", "finalize", "chunk", "delete", "get")
    per_renewal = sum(counted.get(k, 0) for k in renewal_kinds) / renewed if renewed else 0.0
    expected = files * 86400 / renewal_period if keep_alive == "always" else 0.0
    other = {k: v for k, v in at_files.items() if k not in (*renewal_kinds, "list")}
    # Housekeeping: what keeping the mirror in step costs beside the renewals themselves.
    housekeeping = at_files.get("list", 0) + sum(other.values())
    steady = housekeeping + expected * per_renewal
    return {"files": files, "keep_alive": keep_alive, "housekeeping": housekeeping,
            "sim_files": sim_files, "speed": speed, "sim_days": sim_days,
            "window_s": elapsed, "counted": counted, "per_day": per_day,
            "at_files": at_files, "total_at_files": sum(at_files.values()),
            "listing": listing, "refresh_s": d["refresh_every"],
            "renewal_period_s": renewal_period,
            "expected_renewals": expected, "per_renewal": per_renewal,
            "other": other, "steady": steady,
            "old_default_listing_per_day": 86400 / 30 * listing["pages"]}


def _status(cfg: Path) -> dict:
    out = subprocess.run([*mediasync_cmd(), "-c", str(cfg), "status", "--json"],
                         capture_output=True, text=True, env=bench_env(), check=False)
    return json.loads(out.stdout)


def part4b(work: Path, count: int) -> dict:
    """Tokens of ``count`` captions, default config vs `thinking_budget = 0`: the same
    images, one emulator, two state directories (each sync uploads its own copies)."""
    sub = work / "p4b"
    rows = {}
    with EmulatorProcess(sub, name="emu") as emu:
        for label, extra in (("default", ""), ("thinking_budget = 0", "thinking_budget = 0\n")):
            run = sub / label.split()[0]
            folder = run / "media"
            write_pngs(folder, count)
            cfg = write_config(run, emu.url, folder, settle="0s")
            cfg.write_text(cfg.read_text() + extra)  # the last table is [[folders]]
            code, seconds = run_cli(cfg, "sync", log=run / "sync.log", timeout=1800)
            st = _status(cfg)
            cost = sum(m["total"]["cost_usd"] for m in st["costs"].values())
            rows[label] = {"exit": code, "seconds": seconds, "sidecars": count_sidecars(folder),
                           "tokens": st["tokens"], "cost_usd": cost,
                           "models": sorted(st["costs"])}
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="1,2,3,4,4o,4b")
    ap.add_argument("--count", type=int, default=200, help="images in part 1")
    ap.add_argument("--free-count", type=int, default=60, help="images in part 2")
    ap.add_argument("--idle-files", type=int, default=10_000, help="mirrored files in part 4")
    ap.add_argument("--idle-sim-files", type=int, default=1000,
                    help="files the daemon really keeps in part 4 (scaled to --idle-files)")
    ap.add_argument("--speed", type=float, default=2160.0,
                    help="clock speed-up in part 4 (2,160: a 42 h renewal period is 70 s)")
    ap.add_argument("--days", type=float, default=7.0, help="simulated days in part 4")
    ap.add_argument("--captions", type=int, default=200, help="images in part 4b")
    ap.add_argument("--run-for", type=float, default=20.0, help="daemon seconds in part 3")
    args = ap.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    print(f"$ {command_line()}")
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-quota-") as tmp:
        work = Path(tmp)
        if "1" in parts:
            r = part1(work, args.count)
            print(f"1. paid key, {args.count} images, 0.5 s latency: sdk {r['sdk_s']:.1f} s, "
                  f"mediasync {r['ms_s']:.1f} s (exit {r['exit']}, {r['sidecars']} sidecars) "
                  f"= {r['ratio']:.3f} of the sdk's time (target <= 0.167); "
                  f"refused {r['refused']}", flush=True)
        if "2" in parts:
            r = part2(work, args.free_count)
            print(f"2. free tier 10/min, {args.free_count} images: {r['seconds']:.1f} s "
                  f"(exit {r['exit']}, {r['sidecars']} sidecars), {r['per_min']:.2f} images/min "
                  f"over the whole run; ideal at the limit {r['ideal_s']:.0f} s, mediasync "
                  f"{r['vs_ideal'] * 100:+.1f} % of it (target within 10 %); refused generate "
                  f"calls {r['refused']} (target <= 2)", flush=True)
        if "3" in parts:
            r = part3(work, 30, args.run_for)
            print(f"3. day quota 20/model, 30 images x 2 models: sync exit {r['exit']}; "
                  f"refused after sync {r['after_sync']['refused']}; after {args.run_for:.0f} s "
                  f"of `run` {r['after_run']['refused']} (admitted {r['after_run']['admitted']})",
                  flush=True)
            print(f"   log: {r['log']}")
            print(f"   status --json paused: {json.dumps(r['paused'])}", flush=True)
        listing = None
        for part, keep_alive in (("4", "always"), ("4o", "on_use")):
            if part not in parts:
                continue
            r = part4(work, args.idle_files, args.idle_sim_files, args.speed, args.days,
                      keep_alive, listing)
            li = listing = r["listing"]
            print(f"{part}. idle, keep_alive = {keep_alive!r}: one listing of {r['files']} "
                  f"copies ({li['listed']} listed; filled "
                  f"in {li['fill_s']:.0f} s) = {li['pages']} list requests (at the old 30 s: "
                  f"{r['old_default_listing_per_day']:.0f}/day)", flush=True)
            print(f"   daemon over {r['sim_files']} files, clock x{r['speed']:g}, "
                  f"{r['sim_days']:.2f} simulated days in {r['window_s']:.0f} s: counted "
                  f"{json.dumps(r['counted'])}", flush=True)
            print("   requests per simulated day: "
                  + ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["per_day"].items()))
                  + f" (total {sum(r['per_day'].values()):.0f})", flush=True)
            print(f"   scaled to {r['files']} files (list = {86400 / r['refresh_s']:g} refreshes "
                  f"x {li['pages']} pages): "
                  + ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["at_files"].items()))
                  + f"; total {r['total_at_files']:.0f}/day as observed", flush=True)
            print(f"   steady state at {r['files']} files: "
                  f"{r['expected_renewals']:.0f} renewals/day (one per copy every "
                  f"{r['renewal_period_s'] / 3600:g} h) x "
                  f"{r['per_renewal']:.2f} requests measured per renewal + "
                  f"{r['at_files'].get('list', 0):.0f} list + {sum(r['other'].values()):.0f} other "
                  f"{json.dumps(r['other'])} = {r['steady']:.0f} requests/day "
                  f"(target <= 1,000); housekeeping (all but the renewals) "
                  f"{r['housekeeping']:.0f}/day", flush=True)
        if "4b" in parts:
            rows = part4b(work, args.captions)
            base, off = rows["default"], rows["thinking_budget = 0"]
            for label, r in rows.items():
                t = r["tokens"]
                print(f"4b. {args.captions} captions, {label}: exit {r['exit']}, "
                      f"{r['sidecars']} sidecars, {r['seconds']:.1f} s; tokens prompt "
                      f"{t['prompt']}, output {t['output']}, thoughts {t['thoughts']} "
                      f"(total {sum(t.values())}); estimated ${r['cost_usd']:.4f} "
                      f"({', '.join(r['models'])})", flush=True)
            b, o = sum(base["tokens"].values()), sum(off["tokens"].values())
            print(f"    saving: {b - o} tokens ({(b - o) / b * 100:.1f} %), "
                  f"${base['cost_usd'] - off['cost_usd']:.4f} "
                  f"({(1 - off['cost_usd'] / base['cost_usd']) * 100:.1f} % of the cost)",
                  flush=True)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
