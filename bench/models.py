"""Models, thinking and service tiers (issue 16), against `mediasync emulator` with the
real CLI.

    .venv/bin/python bench/models.py                     # every part
    .venv/bin/python bench/models.py --parts 2 --count 200

1. retired model: the real daemon (`mediasync run`, max_generations 8) over N images
   (100) whose model is retired on the emulator after start-up, as happens live; calls
   sent to the dead model (target: one wave, at most max_generations), `status` lines
   naming it (target: one HELD line), outputs recorded as failed (target: 0); then the
   config names a good model and SIGHUP: seconds until every caption is written. Then
   a restart with the same bad model: calls sent to it (target: 0).
2. thinking: N captions (200) with `sync`, default prompts, on gemini-2.5-flash,
   gemini-3.8-flash and the default model, each with its default thinking and with
   `thinking = "off"` / `"minimal"` (and the default model with `media_resolution =
   "low"`); tokens (prompt, output, thoughts) and the estimated cost from `status --json`.
3. Flex against standard: N captions (200) on gemini-3.8-flash; the emulator answers a
   standard call in --std-latency (0.05 s) and a Flex one in --flex-latency (1 s: the
   live 1-15 minutes, scaled); wall time of `sync` with max_generations 8 and 32, and
   the estimated cost.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import (
    EmulatorProcess,
    bench_env,
    command_line,
    count_sidecars,
    machine,
    mediasync_cmd,
    run_cli,
    start_daemon,
    stop_daemon,
    wait_for_log,
    write_config,
    write_pngs,
)

from mediasync.config import DEFAULT_API

DEFAULT = DEFAULT_API["model"]


def _status(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*mediasync_cmd(), "-c", str(cfg), "status", *args],
                          capture_output=True, text=True, env=bench_env(), check=False)


def _waiting(cfg: Path) -> int:
    """Files whose state is "waiting" (a file's sidecars say "waiting" too: not counted)."""
    doc = json.loads(_status(cfg, "--json").stdout or "{}")
    return sum(1 for f in doc.get("files", []) if f.get("state") == "waiting")


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _calls(emu: EmulatorProcess, model: str) -> int:
    return int(emu.stats()["generate_by_model"].get(model, 0))


def _wait(predicate, timeout: float, what: str, every: float = 0.05) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if predicate():
            return time.perf_counter() - t0
        time.sleep(every)
    raise SystemExit(f"timed out waiting for {what}")


def part1(work: Path, count: int) -> dict:
    sub = work / "p1"
    bad, good = "gemini-3.8-flash", "gemini-3.7-flash"
    with EmulatorProcess(sub, name="emu") as emu:
        folder = sub / "media"
        folder.mkdir(parents=True)
        cfg = write_config(sub, emu.url, folder, api={"model": bad}, settle="0s",
                           max_generations=8, requests_per_minute=1_000_000, max_uploads=8)
        log = sub / "run.log"
        proc = start_daemon(cfg, log)
        try:
            wait_for_log(log, "watching")
            _post(f"{emu.url}/_emulator/models", {"retire": [bad]})  # retired under it
            write_pngs(folder, count)
            _wait(lambda: _waiting(cfg) >= count, 300, "every file waiting", every=0.5)
            time.sleep(2.0)  # anything still in flight lands
            sent = _calls(emu, bad)
            text = _status(cfg).stdout
            doc = json.loads(_status(cfg, "--json").stdout)
            held_lines = [x for x in text.splitlines() if x.startswith("HELD: ")]
            failed = sum(1 for f in doc["files"] if f["state"] == "failed")
            said = [x for x in log.read_text().splitlines()
                    if f"model {bad} is not available" in x]
            cfg.write_text(cfg.read_text().replace(f'model = "{bad}"', f'model = "{good}"'))
            proc.send_signal(signal.SIGHUP)
            heal = _wait(lambda: count_sidecars(folder) == count, 600, "every caption")
        finally:
            stop_daemon(proc)
        # A restart with the bad model again: the start-up look holds it before any call.
        more = write_pngs(sub / "media2", 20, first_seed=10_000)
        cfg2 = write_config(sub, emu.url, more[0].parent, name="again.toml",
                            api={"model": bad}, settle="0s", max_generations=8)
        before = _calls(emu, bad)
        code, _ = run_cli(cfg2, "sync", log=sub / "again.log")
        again = _calls(emu, bad) - before
    return {"files": count, "sent": sent, "held_lines": held_lines, "log_lines": len(said),
            "failed": failed, "heal_s": heal, "restart_calls": again, "restart_exit": code}


def part2(work: Path, count: int) -> list[dict]:
    sub = work / "p2"
    rows = []
    runs = [("gemini-2.5-flash", None, None), ("gemini-2.5-flash", "minimal", None),
            ("gemini-2.5-flash", "off", None),
            ("gemini-3.8-flash", None, None), ("gemini-3.8-flash", "minimal", None),
            ("gemini-3.8-flash", "off", None),
            (DEFAULT, None, None), (DEFAULT, "off", None), (DEFAULT, "off", "low")]
    with EmulatorProcess(sub, name="emu") as emu:
        for i, (model, thinking, resolution) in enumerate(runs):
            run = sub / f"r{i}"
            folder = run / "media"
            write_pngs(folder, count)
            cfg = write_config(run, emu.url, folder, api={"model": model}, settle="0s",
                               max_generations=16, requests_per_minute=1_000_000,
                               max_uploads=8)
            knobs = {"thinking": thinking, "media_resolution": resolution}
            cfg.write_text(cfg.read_text() + "".join(  # folder keys: after [[folders]]
                f'{k} = "{v}"\n' for k, v in knobs.items() if v))
            code, seconds = run_cli(cfg, "sync", log=run / "sync.log")
            st = json.loads(_status(cfg, "--json").stdout)
            cost = [m["total"]["cost_usd"] for m in st["costs"].values()]
            rows.append({"model": model, "thinking": thinking or "(default)",
                         "resolution": resolution or "(default)", "exit": code,
                         "sidecars": count_sidecars(folder), "tokens": st["tokens"],
                         "cost_usd": None if None in cost else sum(cost)})
    return rows


def part3(work: Path, count: int, std_latency: float, flex_latency: float) -> list[dict]:
    sub = work / "p3"
    rows = []
    flags = ["--flex-latency", f"{flex_latency}s"]
    with EmulatorProcess(sub, name="emu", generate_latency=std_latency, flags=flags) as emu:
        for i, (tier, slots) in enumerate((("standard", 8), ("flex", 8), ("flex", 32))):
            run = sub / f"r{i}"
            folder = run / "media"
            write_pngs(folder, count)
            api = {"model": "gemini-3.8-flash", "service_tier": tier}
            cfg = write_config(run, emu.url, folder, api=api, settle="0s",
                               max_generations=slots, requests_per_minute=1_000_000,
                               max_uploads=8)
            code, seconds = run_cli(cfg, "sync", log=run / "sync.log")
            st = json.loads(_status(cfg, "--json").stdout)
            m = st["costs"]["gemini-3.8-flash"]["total"]
            rows.append({"tier": tier, "max_generations": slots, "exit": code,
                         "sidecars": count_sidecars(folder), "seconds": seconds,
                         "tokens": m["tokens"], "cost_usd": m["cost_usd"]})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="1,2,3")
    ap.add_argument("--files", type=int, default=100, help="images in part 1")
    ap.add_argument("--count", type=int, default=200, help="captions in parts 2 and 3")
    ap.add_argument("--std-latency", type=float, default=0.05)
    ap.add_argument("--flex-latency", type=float, default=1.0)
    args = ap.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    print(f"$ {command_line()}")
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        work = Path(tmp)
        if "1" in parts:
            r = part1(work, args.files)
            print(f"1. model retired under the daemon, {r['files']} images, max_generations 8: "
                  f"{r['sent']} calls sent to it (target <= 8); status: {len(r['held_lines'])} "
                  f"HELD line(s) {r['held_lines']}; {r['log_lines']} log line(s) naming it; "
                  f"{r['failed']} file(s) failed (target 0); SIGHUP with a good model: every "
                  f"caption written {r['heal_s']:.1f} s later; a restart with the same bad "
                  f"model: {r['restart_calls']} call(s) to it, sync exit {r['restart_exit']}",
                  flush=True)
        if "2" in parts:
            for r in part2(work, args.count):
                t = r["tokens"]
                cost = "price unknown" if r["cost_usd"] is None else f"${r['cost_usd']:.4f}"
                print(f"2. {args.count} captions, {r['model']}, thinking {r['thinking']}, "
                      f"media_resolution {r['resolution']}: exit "
                      f"{r['exit']}, {r['sidecars']} sidecars; tokens prompt {t['prompt']}, "
                      f"output {t['output']}, thoughts {t['thoughts']} (total "
                      f"{sum(t.values())}); estimated {cost}", flush=True)
        if "3" in parts:
            for r in part3(work, args.count, args.std_latency, args.flex_latency):
                print(f"3. {args.count} captions, gemini-3.8-flash, {r['tier']}, max_generations "
                      f"{r['max_generations']} (latency standard {args.std_latency:g} s, Flex "
                      f"{args.flex_latency:g} s): exit {r['exit']}, {r['sidecars']} sidecars in "
                      f"{r['seconds']:.1f} s; {r['tokens']} tokens, estimated "
                      f"${r['cost_usd']:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
