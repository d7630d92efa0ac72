"""A backlog by batch vs interactive (issue 17), and kill -9 during a job.

    .venv/bin/python bench/batch.py                        # 1,000 images
    .venv/bin/python bench/batch.py --count 200 --job 20s  # a quick run

Same backlog of N images (default 1,000), default prompts and model, each run with its
own emulator process and state directory, the real CLI (`mediasync sync`):

1. interactive: `[batch] mode = "off"`, the emulator refusing as Tier 1 does
   (1,000 requests a minute, 10,000 a day per model), 0.3 s per answer.
2. batch: `[batch] mode = "always"`, the emulator's jobs PENDING for a fifth of
   ``--job`` and SUCCEEDED after ``--job`` (live: minutes to 24 h).
3. kill -9: as 2 with a job that would take an hour; `sync` is killed while it polls,
   `sync --no-wait` then finds the recorded job (exit 6), the emulator's clock is moved
   past the job's end, and `sync` writes the answers. Jobs created must stay 1.

For each: API requests by endpoint (emulator stats), estimated cost (`status --json`,
the ledger's prices: batch at half), wall time, sidecars written.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
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
    table,
    write_config,
    write_pngs,
)


def _config(sub: Path, url: str, folder: Path, mode: str) -> Path:
    cfg = write_config(sub, url, folder, settle="0s", requests_per_minute=6000,
                       max_uploads=4)
    cfg.write_text(cfg.read_text().replace("[[folders]]",
                                           f'[batch]\nmode = "{mode}"\n\n[[folders]]'))
    return cfg


def _status(cfg: Path) -> dict:
    out = subprocess.run([*mediasync_cmd(), "-c", str(cfg), "status", "--json"],
                         capture_output=True, text=True, env=bench_env(), check=False)
    return json.loads(out.stdout)


def _cost(cfg: Path) -> tuple[float, int]:
    doc = _status(cfg)
    cost, tokens = 0.0, 0
    for spans in doc.get("costs", {}).values():
        total = spans["total"]
        cost += total["cost_usd"] or 0.0
        tokens += total["tokens"]
    return cost, tokens


def _api(stats: dict) -> dict[str, int]:
    return {k: v for k, v in stats["requests"].items() if k != "control" and v}


def run(work: Path, count: int, mode: str, job: float) -> dict:
    sub = work / mode
    folder = sub / "media"
    write_pngs(folder, count)
    flags = ["--quota-rpm", "1000", "--quota-rpd", "10000", "--quota-tier", "paid",
             "--batch-pending", f"{job / 5}s", "--batch-duration", f"{job}s"]
    with EmulatorProcess(sub, generate_latency=0.3, flags=flags, name="emu") as emu:
        cfg = _config(sub, emu.url, folder, mode)
        code, seconds = run_cli(cfg, "sync", log=sub / "sync.log", timeout=7200)
        stats = emu.stats()
    cost, tokens = _cost(cfg)
    api = _api(stats)
    return {"mode": mode, "exit": code, "seconds": seconds, "sidecars": count_sidecars(folder),
            "requests": sum(api.values()), "by_endpoint": api,
            "generate": api.get("generate", 0), "jobs": stats.get("batches_created", 0),
            "cost": cost, "tokens": tokens}


def kill9(work: Path, count: int) -> dict:
    sub = work / "kill9"
    folder = sub / "media"
    write_pngs(folder, count)
    flags = ["--batch-pending", "60s", "--batch-duration", "3600s"]
    with EmulatorProcess(sub, name="emu", flags=flags) as emu:
        cfg = _config(sub, emu.url, folder, "always")
        with open(sub / "sync.log", "wb") as log:
            proc = subprocess.Popen([*mediasync_cmd(), "-c", str(cfg), "sync"],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env=bench_env())
            deadline = time.monotonic() + 1800
            while not emu.requests().get("batch.get") and time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise SystemExit(f"sync exited early ({proc.returncode}); see {log.name}")
                time.sleep(0.2)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        killed_at = emu.stats()["batches_created"]
        no_wait, _ = run_cli(cfg, "sync", "--no-wait", log=sub / "sync2.log", timeout=1800)
        req = urllib.request.Request(f"{emu.url}/_emulator/advance", method="POST",
                                     data=json.dumps({"seconds": 3600}).encode())
        urllib.request.urlopen(req, timeout=10).read()
        code, _ = run_cli(cfg, "sync", log=sub / "sync3.log", timeout=1800)
        stats = emu.stats()
    return {"jobs_at_kill": killed_at, "no_wait_exit": no_wait, "exit": code,
            "jobs": stats["batches_created"], "sidecars": count_sidecars(folder),
            "generate": stats["requests"].get("generate", 0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--job", type=float, default=60.0,
                    help="the emulator's job duration in seconds (default 60)")
    ap.add_argument("--parts", default="interactive,batch,kill9")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    print(f"# {command_line()}\n# {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mediasync-bench-batch-") as tmp:
        work = Path(tmp)
        rows = []
        for mode in ("interactive", "batch"):
            if mode in parts:
                r = run(work, args.count, "off" if mode == "interactive" else "always",
                        args.job)
                print(json.dumps(r), flush=True)
                rows.append([mode, r["exit"], r["requests"], r["generate"], r["jobs"],
                             f"{r['tokens']:,}", f"${r['cost']:.4f}", f"{r['seconds']:.1f}",
                             r["sidecars"]])
        if rows:
            print(table(rows, ["run", "exit", "API requests", "generate", "jobs", "tokens",
                               "est. cost", "wall s", "sidecars"]))
        if "kill9" in parts:
            k = kill9(work, min(args.count, 200))
            print(json.dumps(k), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
