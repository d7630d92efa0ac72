"""Days, simulated: the daemon and the emulator under libfaketime's speed-up through
two days at the default schedule (48 h TTL, renew_before 6h, refresh_every 30s,
rescan_every 10m).

    apt-get install -y faketime                        # libfaketime
    .venv/bin/python bench/days.py                     # 2 days at x300: about 10 minutes
    .venv/bin/python bench/days.py --speed 1000 --files 10   # a quicker run

Both processes run with ``LD_PRELOAD=libfaketime.so.1`` and
``FAKETIME="@<start> x<speed>"``: wall clock, monotonic clock and every sleep and
poll time-out run ``speed`` times faster. Each is started with the virtual time
this script computes for the moment of its start (virtual = T0 + speed x real
seconds since T0), so both share one timeline; the emulator's skew is measured
(``POST /_emulator/advance`` with 0 s answers its now) and printed. The daemon's
only non-default settings are ``api.timeout = 1h`` (12 s of real time at x300:
on a loaded machine a request can take more than 60 fake seconds) and the
state dir.

The sidecars are written first by ``mediasync sync`` on the same timeline (see
run() for why); then ``mediasync run`` gets the two days, and must run no prompt.

At 1/4 of the run three listings are made slower (400 s) than the refresh
job's time-out (300 s): each must cost one log line, not a traceback. At the
end the daemon gets SIGTERM while a listing is in flight, as ``systemctl
stop`` may send it.

Watched from outside, in real time, about twice a second: the emulator's live
files (``GET /_emulator/files``) and the daemon's state DB (read-only). A file
is "unusable" when the copy the DB names is in neither of two listings taken
around the DB read; "expired" when a remote file left the listing after its
expirationTime. At the end: renewals (log lines ``renewed``), prompts run
(generateContent requests) against outputs written, tracebacks in the log.
Exit 1 when a file was ever expired or unusable, a prompt ran twice, a file
was not renewed, or the log has a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from _common import (
    EmulatorProcess,
    bench_env,
    command_line,
    machine,
    mediasync_cmd,
    start_daemon,
    stop_daemon,
    table,
    write_config,
)

from mediasync.media.samples import mp4_bytes, png_bytes, wav_bytes

LIBFAKETIME = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
               "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
               "/usr/lib/faketime/libfaketime.so.1")
DAY = 86400.0


def find_libfaketime() -> str:
    for p in LIBFAKETIME:
        if Path(p).exists():
            return p
    raise SystemExit("libfaketime not found: apt-get install -y faketime")


class VirtualClock:
    """virtual = t0 + speed * (real - r0): the timeline both processes are started on."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.r0 = time.time()
        self.t0 = float(int(self.r0))

    def now(self) -> float:
        return self.t0 + self.speed * (time.time() - self.r0)

    def env(self, lib: str) -> dict[str, str]:
        """FAKETIME for a process started now (whole seconds: libfaketime's format)."""
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(round(self.now())))
        env = bench_env()
        env.update(LD_PRELOAD=lib, FAKETIME=f"@{start} x{self.speed:g}")
        env.pop("FAKETIME_DONT_RESET", None)  # each process starts on its own "@start"
        return env


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def ts(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def write_files(folder: Path, count: int) -> int:
    folder.mkdir(parents=True)
    for i in range(count):
        if i % 5 == 0:
            (folder / f"v{i:03d}.mp4").write_bytes(mp4_bytes(1.0, seed=i))
        elif i % 5 == 1:
            (folder / f"a{i:03d}.wav").write_bytes(wav_bytes(0.25, freq=300.0 + i))
        else:
            (folder / f"i{i:03d}.png").write_bytes(png_bytes(64, 48, seed=i))
    return count


class Watcher:
    """What the outside observer saw: remote copies, and the daemon's names for them."""

    def __init__(self, url: str, db: Path) -> None:
        self.url, self.db = url, db
        self.seen: dict[str, float] = {}  # remote name -> expirationTime
        self.expired: set[str] = set()
        self.unusable: Counter[str] = Counter()  # sha -> polls its copy was unusable
        self.polls = 0
        self.min_margin: float | None = None  # least (expiration - now) of a named copy

    def listing(self) -> tuple[float, dict[str, dict[str, Any]]]:
        now = post(f"{self.url}/_emulator/advance", {"seconds": 0})["now"]
        files = {f["name"]: f for f in get(f"{self.url}/_emulator/files")["files"]}
        return now, files

    def named(self) -> dict[str, str]:
        if not self.db.exists():
            return {}
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return {sha: name for sha, name in con.execute(
                "SELECT c.sha256, c.remote_name FROM contents c WHERE c.remote_name IS NOT NULL "
                "AND EXISTS (SELECT 1 FROM paths p WHERE p.sha256 = c.sha256 "
                "AND p.gone_at IS NULL)")}
        except sqlite3.OperationalError:  # tables not made yet
            return {}
        finally:
            con.close()

    def poll(self) -> None:
        now1, l1 = self.listing()
        named = self.named()
        now2, l2 = self.listing()
        self.polls += 1
        for sha, name in named.items():
            f = l1.get(name) or l2.get(name)
            if f is None or f.get("state") != "ACTIVE":
                self.unusable[sha] += 1
                continue
            margin = ts(f["expirationTime"]) - now2
            if self.min_margin is None or margin < self.min_margin:
                self.min_margin = margin
        for name, exp in list(self.seen.items()):
            if name not in l2 and exp <= now2:
                self.expired.add(name)
                del self.seen[name]
            elif name not in l2:
                del self.seen[name]
        for name, f in l2.items():
            self.seen[name] = ts(f["expirationTime"])


def run(args: argparse.Namespace, work: Path) -> int:
    lib = find_libfaketime()
    folder = work / "media"
    n = write_files(folder, args.files)
    clock = VirtualClock(args.speed)
    emu = EmulatorProcess(work, env=clock.env(lib))
    url = emu.url
    skew = post(f"{url}/_emulator/advance", {"seconds": 0})["now"] - clock.now()
    cfg = write_config(work, url, folder, api={"timeout": args.timeout})
    log = work / "run.log"
    # The first sync runs on the same timeline, before the daemon: the sidecars are
    # written once, here, and the two days must run no prompt again. (Written by the
    # daemon itself, a sidecar's temp file would carry the kernel's real mtime, which
    # libfaketime does not fake: the daemon's clock would see it as hours old.)
    setup = subprocess.run([*mediasync_cmd(), "-c", str(cfg), "sync"], env=clock.env(lib),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=600, check=False)
    (work / "setup.log").write_text(setup.stdout + setup.stderr)
    first = get(f"{url}/_emulator/stats")
    print(f"setup sync under libfaketime: exit {setup.returncode}, "
          f"{first['requests'].get('generate', 0)} prompts run, "
          f"{first['uploads_finalized']} uploads", flush=True)
    if setup.returncode != 0:
        emu.stop()
        raise SystemExit(f"setup sync failed: {setup.stdout[-2000:]}{setup.stderr[-2000:]}")
    daemon = start_daemon(cfg, log, env=clock.env(lib))
    watcher = Watcher(url, work / "state" / "state.db")
    end = clock.t0 + args.days * DAY
    print(f"emulator skew at start: {skew:+.1f} virtual s", flush=True)
    next_note = clock.t0
    slow_at = clock.t0 + 0.25 * args.days * DAY if args.slow_lists else None
    try:
        while clock.now() < end:
            if slow_at is not None and clock.now() >= slow_at:
                # Listings slower than the refresh job's time-out: each must cost one
                # log line, not an APScheduler traceback.
                post(f"{url}/_emulator/faults", {"kind": "slow", "match": "list",
                                                 "delay": 400.0, "times": args.slow_lists})
                print(f"  virtual +{(clock.now() - clock.t0) / 3600:5.1f} h: "
                      f"{args.slow_lists} listings take 400 s (refresh time-out: 300 s)",
                      flush=True)
                slow_at = None
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited with {daemon.returncode}; see {log}")
            watcher.poll()
            if clock.now() >= next_note:
                h = (clock.now() - clock.t0) / 3600
                print(f"  virtual +{h:5.1f} h: {len(watcher.seen)} remote files, "
                      f"renewed {renewals(log)}, expired {len(watcher.expired)}, "
                      f"unusable {len(watcher.unusable)}", flush=True)
                next_note += 4 * 3600
            time.sleep(args.poll)
        final_skew = post(f"{url}/_emulator/advance", {"seconds": 0})["now"] - clock.now()
        stats = get(f"{url}/_emulator/stats")
        if args.stop_mid_refresh:
            stop_in_refresh(url, daemon)
    finally:
        if daemon.poll() is None:
            stop_daemon(daemon)
        emu.stop()
    return report(args, work, log, n, watcher, first, stats, (skew, final_skew),
                  daemon.returncode)


def stop_in_refresh(url: str, daemon: subprocess.Popen) -> None:
    """SIGTERM while the refresh job waits on a listing (as systemctl stop may)."""
    post(f"{url}/_emulator/faults", {"kind": "slow", "match": "list", "delay": 200.0,
                                     "times": 1})
    before = get(f"{url}/_emulator/stats")["requests"].get("list", 0)
    deadline = time.monotonic() + 30
    while get(f"{url}/_emulator/stats")["requests"].get("list", 0) == before:
        if time.monotonic() > deadline:
            print("no listing started within 30 s; stopping anyway", flush=True)
            break
        time.sleep(0.02)
    print("SIGTERM while a listing is in flight", flush=True)
    stop_daemon(daemon)


def renewals(log: Path) -> int:
    return sum(1 for line in log.read_text(errors="replace").splitlines() if " renewed " in line)


def outputs_written(db: Path) -> tuple[int, Counter[str]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        outcomes = Counter(o for (o,) in con.execute("SELECT outcome FROM outputs"))
        renewed = con.execute("SELECT COUNT(*) FROM contents WHERE uploads >= 2").fetchone()[0]
    finally:
        con.close()
    return renewed, outcomes


def report(args: argparse.Namespace, work: Path, log: Path, n: int, w: Watcher,
           first: dict[str, Any], stats: dict[str, Any], skews: tuple[float, float],
           code: int | None) -> int:
    lines = log.read_text(errors="replace").splitlines()
    tbs = [x[:300] for x in lines if "Traceback" in x]
    timeouts = [x[:200] for x in lines if "timed out" in x]
    stop_lines = [x[:200] for x in lines if "stopping" in x]
    renewed_files, outcomes = outputs_written(work / "state" / "state.db")
    generated = stats["requests"].get("generate", 0)
    rerun = generated - first["requests"].get("generate", 0)
    written = outcomes.get("written", 0)
    print()
    print(f"$ {command_line()}")
    print(f"machine: {machine()}")
    print(f"libfaketime x{args.speed:g}, {args.days:g} virtual days, {n} files, "
          f"api.timeout {args.timeout}, everything else default; {w.polls} observer polls; "
          f"{args.slow_lists} listings slowed past the refresh time-out")
    rows = [
        ["renewals logged", renewals(log)],
        ["files renewed at least once (DB uploads >= 2)", f"{renewed_files} of {n}"],
        ["uploads finalized (emulator)", stats["uploads_finalized"]],
        ["remote deletes (emulator)", stats["deletes"]],
        ["files whose named copy was ever unusable", len(w.unusable)],
        ["remote files that expired", len(w.expired)],
        ["least time left on a named copy", "-" if w.min_margin is None
         else f"{w.min_margin / 3600:.1f} h"],
        ["prompts run by the setup sync / by the daemon", f"{generated - rerun} / {rerun}"],
        ["outputs written", written],
        ["output outcomes", dict(outcomes)],
        ["tracebacks in the log", len(tbs)],
        ["'timed out' lines in the log", len(timeouts)],
        ["emulator skew start / end (virtual s)", f"{skews[0]:+.1f} / {skews[1]:+.1f}"],
        ["daemon exit after SIGTERM" + (" (sent during a listing)"
                                         if args.stop_mid_refresh else ""), code],
    ]
    print(table(rows, ["figure", "value"]))
    fails = []
    if w.unusable:
        fails.append(f"{len(w.unusable)} file(s) had no usable remote copy at some poll")
    if w.expired:
        fails.append(f"{len(w.expired)} remote file(s) expired")
    if generated != written or written != n or rerun:
        fails.append(f"prompts run {generated} ({rerun} by the daemon), outputs written "
                     f"{written}, files {n}")
    if args.days >= 2 and renewed_files < n:
        fails.append(f"only {renewed_files} of {n} files renewed")
    if tbs:
        fails.append(f"{len(tbs)} traceback(s), first: {tbs[0]}")
    if code != 0:
        fails.append(f"daemon exit code {code} after SIGTERM")
    for t in timeouts[:5] + stop_lines[:2]:
        print(f"log: {t}")
    for f in fails:
        print(f"INVARIANT FAILED: {f}")
    print("all invariants hold" if not fails else f"log: {log}")
    return 1 if fails else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--speed", type=float, default=300.0, help="clock speed-up (default 300)")
    ap.add_argument("--days", type=float, default=2.0, help="virtual days (default 2)")
    ap.add_argument("--files", type=int, default=20, help="files in the folder (default 20)")
    ap.add_argument("--timeout", default="1h", help="api.timeout, virtual (default 1h)")
    ap.add_argument("--poll", type=float, default=0.5, help="observer poll, real seconds")
    ap.add_argument("--slow-lists", type=int, default=3,
                    help="listings made slower than the refresh time-out at 1/4 of the run "
                         "(default 3; 0: none)")
    ap.add_argument("--no-stop-mid-refresh", dest="stop_mid_refresh", action="store_false",
                    help="stop the daemon at a quiet moment instead of during a listing")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (log, state)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-days-"))
    print(f"work dir: {work}", flush=True)
    try:
        return run(args, work)
    finally:
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    os.environ.pop("LD_PRELOAD", None)
    sys.exit(main())
