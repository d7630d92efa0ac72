"""Peak memory of the daemon (`mediasync run`) holding N already-synced files.

    .venv/bin/python bench/memory.py                  # 5,000 files
    .venv/bin/python bench/memory.py --count 1000

Setup (not measured): N tiny distinct PNGs spread over sub-folders, synced once
with `mediasync sync` against a fast emulator (requests_per_minute raised for
that run only). Then `mediasync -c CFG run` (the real CLI, a child process)
with the default config except rescan_every, which is shortened so a periodic
rescan happens during the benchmark:

1. start-up: wait for the log line "watching … media file(s)" (the remote
   listing and the walk are done), then until the daemon is idle (under 5% of
   a CPU for 2 s; it keeps paging the remote listing at the default 60/min, so
   it never reaches zero);
2. rescan: the scheduler starts right after that line, so the first periodic
   rescan is due rescan_every later; wait until then, then until idle again.

VmRSS and VmHWM (peak RSS since start) come from /proc/<pid>/status after each
step; every wait is bounded.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    EmulatorProcess,
    command_line,
    daemon_memory,
    machine,
    request_delta,
    sync_once,
    table,
    write_config,
    write_pngs,
)


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=5000, help="files (default 5000)")
    ap.add_argument("--subdirs", type=int, default=50, help="sub-folders to spread them over")
    ap.add_argument("--rescan-every", type=float, default=20.0,
                    help="daemon.rescan_every for the measured daemon, s")
    args = ap.parse_args()

    print(f"$ {command_line()}")
    print(f"machine: {machine()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        work = Path(tmp)
        folder = work / "media"
        write_pngs(folder, args.count, width=4, height=4, subdirs=args.subdirs)
        with EmulatorProcess(work) as emu:
            sync_once(work, emu.url, folder, args.count)

            cfg = write_config(work, emu.url, folder, name="run.toml",
                               rescan_every=f"{args.rescan_every}s")
            before = emu.requests()
            t0 = time.monotonic()
            m = daemon_memory(cfg, work / "run.log", args.rescan_every)
            print(f"  start-up: {m.line}", flush=True)
            rows.append(["after start-up scan", f"{m.ready_s:.1f} / {m.idle_s:.1f}",
                         mib(m.rss_idle), mib(m.hwm_idle)])
            print(f"  rescan: {m.rescan_cpu_s:.2f} s of CPU from its start to idle", flush=True)
            rows.append(["after a periodic rescan", f"{m.rescan_s:.1f} / {m.rescan_idle_s:.1f}",
                         mib(m.rss_rescan), mib(m.hwm_rescan)])
            reqs = request_delta(before, emu.requests())
            reqs.pop("control", None)
            print(f"  API requests while the daemon ran ({time.monotonic() - t0:.0f}s): "
                  f"{reqs}", flush=True)
    peak = float(rows[-1][3])
    print()
    print(table(rows, ["moment", "s since spawn (started / idle)", "VmRSS MiB",
                       "VmHWM (peak) MiB"]))
    print(f"peak RSS {peak:.1f} MiB holding {args.count} files; target: under 100 MiB -> "
          f"{'met' if peak < 100 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
