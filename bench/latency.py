"""Drop-to-sidecar latency of `mediasync run`, and its overhead beyond the settle
time and the server's own time.

    .venv/bin/python bench/latency.py
    .venv/bin/python bench/latency.py --count 20 --settle 0.5 --generate-latency 0.2

The daemon runs as the real CLI (`mediasync -c CFG run`) in a child process,
the emulator in another. Images are dropped one at a time the way a camera
import or rsync does: written under a dot-name the watcher ignores, then
os.rename'd into place. The clock starts just before the rename and stops when
the sidecar `<name>.caption.md` exists (polled every 5 ms, bounded). The next
image is dropped `--gap` seconds after the previous sidecar appeared.

overhead = latency - settle - (emulator processing delay + generate latency)

Rows: requests_per_minute raised (so the rate limiter never waits: pure
overhead), and the default 60/min with a gap that lets its bucket refill (each
image costs 3 requests: upload start, upload finalize, generateContent).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    EmulatorProcess,
    command_line,
    machine,
    png_bytes,
    start_daemon,
    stop_daemon,
    table,
    wait_cpu_quiet,
    wait_for_log,
    write_config,
)

POLL = 0.005
TIMEOUT = 60.0


def quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run_row(work: Path, label: str, *, count: int, settle: float, rpm: int, gap: float,
            latency: float, processing: float, seed0: int) -> list[float]:
    sub = work / label.replace(" ", "-").replace("/", "")
    folder = sub / "media"
    folder.mkdir(parents=True)
    with EmulatorProcess(sub, generate_latency=latency, processing_delay=processing) as emu:
        cfg = write_config(sub, emu.url, folder, settle=f"{settle}s", requests_per_minute=rpm)
        log = sub / "run.log"
        daemon = start_daemon(cfg, log)
        try:
            wait_for_log(log, r"watching \d+ folder", timeout=60)
            wait_cpu_quiet(daemon.pid, quiet_for=1.0, timeout=60)
            times = []
            for i in range(count):
                name = f"img{seed0 + i:05d}.png"
                tmp = folder / f".{name}.part"
                with open(tmp, "wb") as f:
                    f.write(png_bytes(64, 48, seed=seed0 + i))
                    f.flush()
                    os.fsync(f.fileno())
                target = folder / name
                side = folder / f"{name}.caption.md"
                t0 = time.perf_counter()
                os.rename(tmp, target)
                deadline = t0 + TIMEOUT
                while not side.exists():
                    if time.perf_counter() > deadline or daemon.poll() is not None:
                        raise SystemExit(f"no sidecar for {name} after {TIMEOUT:.0f}s; see {log}")
                    time.sleep(POLL)
                times.append(time.perf_counter() - t0)
                time.sleep(gap)
        finally:
            stop_daemon(daemon)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20, help="images dropped per row (default 20)")
    ap.add_argument("--settle", type=float, default=0.5, help="daemon.settle in seconds")
    ap.add_argument("--generate-latency", type=float, default=0.0,
                    help="emulator generateContent latency, s (subtracted)")
    ap.add_argument("--processing-delay", type=float, default=0.0,
                    help="emulator image processing delay, s (subtracted)")
    ap.add_argument("--gap-default", type=float, default=3.0,
                    help="pause between drops in the default-rate row, s")
    args = ap.parse_args()
    server = args.generate_latency + args.processing_delay

    print(f"$ {command_line()}")
    print(f"machine: {machine()}")
    print(f"settle {args.settle}s, emulator generate latency {args.generate_latency}s, "
          f"processing delay {args.processing_delay}s; sidecar polled every {POLL * 1000:.0f} ms")
    rows_spec = [
        ("requests_per_minute 2000", 2000, 0.2),
        ("requests_per_minute 60 (default)", 60, args.gap_default),
    ]
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        for n, (label, rpm, gap) in enumerate(rows_spec):
            times = run_row(Path(tmp), label, count=args.count, settle=args.settle, rpm=rpm,
                            gap=gap, latency=args.generate_latency,
                            processing=args.processing_delay, seed0=n * 1000)
            over = [(t - args.settle - server) * 1000 for t in times]
            print(f"  {label}: overhead ms " + " ".join(f"{o:.0f}" for o in over), flush=True)
            med, p90 = statistics.median(over), quantile(over, 0.9)
            out.append([label, f"{gap}s", len(times),
                        f"{statistics.median(times) * 1000:.0f}", f"{med:.0f}", f"{p90:.0f}",
                        f"{max(over):.0f}", "yes" if p90 < 300 else "no"])
    print()
    print(table(out, ["config", "gap", "n", "median latency ms", "median overhead ms",
                      "p90 overhead ms", "max overhead ms", "p90 < 300 ms"]))
    print("target: overhead (latency - settle - server time) under 300 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
