"""No-op sync: how long `mediasync sync` takes over N files that are already synced,
and which API calls it makes.

    .venv/bin/python bench/noop.py                    # 5,000 files
    .venv/bin/python bench/noop.py --count 500 --profile /tmp/noop.prof

Setup (not measured): N tiny distinct PNGs spread over sub-folders, synced once
against a fast emulator (no latency) with requests_per_minute raised for that
run only. Then the measured runs: `mediasync -c CFG sync` again, wall time from
spawning the process to its exit, with the emulator's request counters
(GET /_emulator/stats) read before and after. The emulator lists at most 100
files a page, like the service, so one full listing of N files is ceil(N/100)
requests.

Rows: the default config (requests_per_minute 60), and the same with
requests_per_minute raised, to separate the rate limiter's share from the rest.
With --profile, one more run (requests_per_minute raised, so the profile shows
work, not the limiter's sleeps) under cProfile; the top functions
by cumulative time are printed.
"""

from __future__ import annotations

import argparse
import math
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    EmulatorProcess,
    bench_env,
    command_line,
    machine,
    mediasync_cmd,
    request_delta,
    run_cli,
    sync_once,
    table,
    write_config,
    write_pngs,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=5000, help="files (default 5000)")
    ap.add_argument("--subdirs", type=int, default=50, help="sub-folders to spread them over")
    ap.add_argument("--repeat", type=int, default=2, help="measured runs per row")
    ap.add_argument("--profile", type=Path, help="also profile one raised-rate run into this file")
    args = ap.parse_args()

    print(f"$ {command_line()}")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-noop-") as tmp:
        work = Path(tmp)
        folder = work / "media"
        t0 = time.perf_counter()
        write_pngs(folder, args.count, width=4, height=4, subdirs=args.subdirs)
        print(f"wrote {args.count} PNGs in {args.subdirs} folders "
              f"({time.perf_counter() - t0:.1f}s)", flush=True)
        with EmulatorProcess(work) as emu:
            sync_once(work, emu.url, folder, args.count)

            configs = {
                "default (60/min)": write_config(work, emu.url, folder, name="default.toml"),
                "requests_per_minute 2000": write_config(work, emu.url, folder,
                                                         name="raised.toml",
                                                         requests_per_minute=2000),
            }
            rows = []
            # The floor: interpreter start and CLI import, no work.
            t0 = time.perf_counter()
            subprocess.run([*mediasync_cmd(), "--version"], env=bench_env(), check=True,
                           stdout=subprocess.DEVNULL, timeout=60)
            rows.append(["`mediasync --version` (start-up floor)", 1,
                         f"{time.perf_counter() - t0:.2f}", 0, 0, "-"])
            pages = max(1, math.ceil(args.count / 100))
            for label, cfg in configs.items():
                for i in range(args.repeat):
                    before = emu.requests()
                    code, seconds = run_cli(cfg, "sync", log=work / "noop.log", timeout=600)
                    reqs = request_delta(before, emu.requests())
                    if code != 0:
                        raise SystemExit(f"sync exited {code}; see {work / 'noop.log'}")
                    api = {k: v for k, v in reqs.items() if k != "control"}
                    print(f"  {label} #{i + 1}: {seconds:.2f}s {api}", flush=True)
                    rows.append([label, i + 1, f"{seconds:.2f}", api.get("list", 0),
                                 sum(v for k, v in api.items() if k != "list"),
                                 "yes" if seconds < 3 and set(api) <= {"list"}
                                 and api.get("list", 0) <= pages else "no"])
            if args.profile:
                # The raised row: the default row's extra time is the limiter's sleep.
                cfg = configs["requests_per_minute 2000"]
                cmd = [sys.executable, "-m", "cProfile", "-o", str(args.profile),
                       "-m", "mediasync", "-c", str(cfg), "sync"]
                t0 = time.perf_counter()
                subprocess.run(cmd, env=bench_env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=600, check=True)
                print(f"\nprofiled run: {time.perf_counter() - t0:.2f}s -> {args.profile}")
                stats = pstats.Stats(str(args.profile))
                stats.sort_stats("cumulative").print_stats(25)
                stats.sort_stats("tottime").print_stats(15)

    print()
    print(table(rows, ["config", "run", "wall s", "list requests (pages)",
                       "other API requests", "meets target"]))
    print(f"one full listing = ceil({args.count}/100) = {math.ceil(args.count / 100)} pages")
    print("target: under 3 s, no API call beyond one (paged) list")
    return 0


if __name__ == "__main__":
    sys.exit(main())
