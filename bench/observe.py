"""The status page and /metrics over a large library (issue 19): request latency with
100,000 files in the store, and the daemon's CPU while it is scraped every 5 s.

    .venv/bin/python bench/observe.py                   # 100,000 files
    .venv/bin/python bench/observe.py --count 10000 --window 60

Setup (not measured): N one-byte .jpg files on disk with their caption sidecars,
written with the store's own rows directly (no sync: stat, hashes and sidecar
records as a finished sync leaves them), 0.5 % failed for good (empty files),
0.5 % waiting to retry a caption; `keep_alive = "on_use"`, so no remote copy is
needed and the daemon is idle once its start-up scan has looked at every file.
The real daemon (`mediasync -c CFG run`, `[daemon] http = "127.0.0.1:PORT"`)
against the emulator in its own process.

Measured:
1. how long after the start the first snapshot is there (the start-up scan runs
   meanwhile), and how long one reading of the store takes (its own metric);
2. latency of `/` (cached and a new search each time), a far page, `/metrics`
   and `/healthz`, sequential requests, median and 95th percentile;
3. the daemon's CPU (utime + stime from /proc) over ``--window`` seconds idle,
   then the same with `/metrics` and `/` fetched every 5 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import (
    ROOT,
    EmulatorProcess,
    command_line,
    cpu_ticks,
    machine,
    start_daemon,
    stop_daemon,
    table,
    wait_cpu_quiet,
    wait_for_log,
    write_config,
)

sys.path.insert(0, str(ROOT))

from mediasync.config import load_config  # noqa: E402
from mediasync.rules import desired  # noqa: E402
from mediasync.store import OutputRow, PathRow, Store  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_library(config_path: Path, count: int) -> dict[str, int]:
    """Files, sidecars and the rows a finished sync leaves, written directly."""
    config = load_config(config_path)
    folder = config.folders[0]
    store = Store(config.daemon.state_dir / "state.db")
    now = time.time()
    failed = waiting = 0
    with store.transaction():
        for i in range(count):
            sub = folder.path / f"d{i % 100:02d}"
            if i < 100:
                sub.mkdir(parents=True, exist_ok=True)
            path = sub / f"img{i:06d}.jpg"
            bad = i % 200 == 0
            path.write_bytes(b"" if bad else b"x")
            st = path.stat()
            sha = hashlib.sha256(str(path).encode()).hexdigest()
            problem = "empty file (0 bytes): nothing to upload" if bad else None
            store.put_path(PathRow(str(path), str(folder.path), st.st_size, st.st_mtime_ns,
                                   st.st_ino, sha, "image", "image/jpeg", problem, None, now))
            if bad:
                failed += 1
                continue
            store.ensure_content(sha, 1, "image/jpeg", "image", now)
            retry = i % 200 == 1
            for want in desired.desired(folder, str(path), "image", config.api.model):
                if not retry:
                    Path(want.sidecar).write_text("a caption\n")
                store.put_output(OutputRow(
                    path=str(path), suffix=want.suffix, sha256=sha,
                    prompt_hash=want.prompt_hash, model=want.model, sidecar=want.sidecar,
                    written_hash=None if retry else "w", pending_hash=None,
                    outcome="failed" if retry else "written",
                    message="503 UNAVAILABLE: the service is busy" if retry else None,
                    prompt_tokens=300, output_tokens=20, retry_at=now + 86400 if retry else None,
                    attempts=1 if retry else 0, at=now, thoughts_tokens=50))
            waiting += retry
    store.close()
    return {"files": count, "failed": failed, "waiting": waiting}


def fetch(url: str) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            body = r.read()
            code = r.status
    except urllib.error.HTTPError as e:
        body, code = e.read(), e.code
    return time.perf_counter() - t0, code, len(body)


def latency(base: str, rounds: int) -> list[list[str]]:
    cases = [
        ("/ (cached)", lambda i: "/"),
        ("/?q=… (a new search each time)", lambda i: f"/?q=img{i * 7919 % 100000:06d}"),
        ("/?state=failed", lambda i: "/?state=failed"),
        ("/?page=10 (far page)", lambda i: "/?page=10"),
        ("/metrics", lambda i: "/metrics"),
        ("/healthz", lambda i: "/healthz"),
    ]
    rows = []
    for label, path in cases:
        times, sizes, codes = [], [], set()
        for i in range(rounds):
            took, code, size = fetch(base + path(i))
            times.append(took * 1000)
            sizes.append(size)
            codes.add(code)
            time.sleep(0.11)  # under the endpoint's 10 renders a second
        times.sort()
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        rows.append([label, f"{statistics.median(times):.1f}", f"{p95:.1f}",
                     f"{max(sizes) / 1024:.1f}", ",".join(map(str, sorted(codes)))])
    return rows


def readings(base: str) -> int:
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    return int(float(next(line.split()[1] for line in text.splitlines()
                          if line.startswith("mediasync_snapshot_readings_total"))))


def cpu_share(pid: int, seconds: float, scrape: str | None) -> float:
    hz = os.sysconf("SC_CLK_TCK")
    t0, c0 = time.monotonic(), cpu_ticks(pid)
    next_at = t0
    while time.monotonic() - t0 < seconds:
        if scrape and time.monotonic() >= next_at:
            fetch(scrape + "/metrics")
            fetch(scrape + "/")
            next_at += 5.0
        time.sleep(0.05)
    return (cpu_ticks(pid) - c0) / hz / (time.monotonic() - t0)


def start(cfg: Path, log: Path, base: str | None) -> tuple[object, float, float]:
    """The daemon, up and idle: (process, seconds to its first snapshot or to "watching")."""
    t0 = time.perf_counter()
    proc = start_daemon(cfg, log)
    wait_for_log(log, r"watching \d+ folder", timeout=1800)
    if base is not None:
        while json.loads(urllib.request.urlopen(base + "/healthz").read()
                         )["snapshot_age_seconds"] is None:
            time.sleep(0.2)
    ready = time.perf_counter() - t0
    quiet = wait_cpu_quiet(proc.pid, quiet_for=5.0, max_share=0.05, timeout=1800)
    return proc, ready, quiet


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=30, help="requests per latency row")
    ap.add_argument("--window", type=float, default=300.0, help="seconds per CPU row")
    args = ap.parse_args()
    print(f"$ {command_line()}")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-observe-") as tmp:
        work = Path(tmp)
        folder = work / "media"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with EmulatorProcess(work) as emu:
            # No rescan in the windows (10 min by default): only what the endpoint adds.
            common = {"keep_alive": "on_use", "settle": "0s", "rescan_every": "24h"}
            off = write_config(work, emu.url, folder, name="off.toml", **common)
            cfg = write_config(work, emu.url, folder, http=f"127.0.0.1:{port}", **common)
            t0 = time.perf_counter()
            made = build_library(cfg, args.count)
            print(f"setup: {made} in {time.perf_counter() - t0:.1f}s", flush=True)
            cpu = []
            proc, ready, quiet = start(off, work / "off.log", None)
            try:
                print(f"without [daemon] http: started in {ready:.1f}s, idle {quiet:.0f}s "
                      "later", flush=True)
                cpu.append(["without [daemon] http, idle",
                            f"{100 * cpu_share(proc.pid, args.window, None):.2f}"])
            finally:
                stop_daemon(proc)
            proc, ready, quiet = start(cfg, work / "daemon.log", base)
            try:
                metrics = urllib.request.urlopen(base + "/metrics").read().decode()
                build = next(line.split()[1] for line in metrics.splitlines()
                             if line.startswith("mediasync_snapshot_build_seconds"))
                states = {line.split('state="')[1].split('"')[0]: float(line.split()[-1])
                          for line in metrics.splitlines()
                          if line.startswith("mediasync_files{")}
                print("files by state (/metrics):",
                      {k: int(v) for k, v in sorted(states.items()) if v})
                print(f"with [daemon] http: first snapshot {ready:.1f}s after the start "
                      f"(start-up scan meanwhile); one reading of the store {float(build):.2f}s;"
                      f" idle {quiet:.0f}s later", flush=True)
                rows = latency(base, args.rounds)
                print(table(rows, ["request", "median ms", "p95 ms", "KiB", "status"]))
                for label, scrape in (("with [daemon] http, nobody asks", None),
                                      ("with [daemon] http, /metrics and / every 5 s", base)):
                    before = readings(base)
                    share = cpu_share(proc.pid, args.window, scrape)
                    cpu.append([label, f"{100 * share:.2f}", readings(base) - before])
                cpu[0].append("-")
                print(table(cpu, [f"daemon CPU over {args.window:.0f}s", "% of one core",
                                  "readings of the store"]))
            finally:
                stop_daemon(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
