"""100,000 files (issue 15, benchmark 4): the first sync, a no-op sync, `status` and
the daemon's memory at 3,000, 30,000 and 100,000 files.

    .venv/bin/python bench/scale.py                            # 3,000, 30,000, 100,000
    .venv/bin/python bench/scale.py --sizes 3000 --repeat 3    # a quick run
    .venv/bin/python bench/scale.py --baseline /tmp/layout     # side by side with a checkout

For each size N, for the tree under test (and, with --baseline, for another checkout
with its own .venv, e.g. `git archive layout | tar -x -C /tmp/layout`):

1. Library (not measured): N distinct tiny PNGs (4x4, ~110 bytes, samples.png_bytes)
   in folders of --per-dir files.
2. First sync (measured): `mediasync -c setup.toml sync` (the real CLI) against a fresh
   emulator (`mediasync emulator`, its own process, no latency, no quota unless
   --quota-rpm), config as bench/_common.sync_once: settle 0 s, requests_per_minute
   raised, max_uploads 8, max_generations 16. The library the other steps measure is
   made by this one sync (nothing is written into the store directly). Captions a
   minute from the emulator's generateContent count (read every 2 s), and the CPU
   seconds of the daemon and of the emulator. With --spy S, py-spy (on PATH or in the
   .venv: `pip install py-spy`, not a dependency) samples both processes for S seconds
   from the moment half the captions are written; the functions holding most samples
   are printed.
3. No-op sync: `mediasync -c default.toml sync` (defaults: settle 2 s, 60 requests a
   minute) over the synced library, --repeat times; wall time from spawn to exit and
   the API requests it made (one paged listing and the configured model's look-up are
   all it may make).
4. `status`, `status --brief`, `status --json` (stdout thrown away), --repeat times each.
5. Daemon memory: `mediasync run` (defaults, rescan_every --rescan-every) until idle
   after its start-up scan, then after its first periodic rescan; VmRSS and VmHWM.
6. With --profile DIR: one more no-op sync and one `status` under cProfile (files in
   DIR); the top functions by cumulative and own time are printed.

With --keep DIR the work is kept, the emulator's files too (emulator-files.json);
a later run with --keep DIR --reuse measures steps 3-6 on that library again, its
emulator restarted with them (`mediasync emulator --files`), without a new first sync.

Each tree's modules are byte-compiled first, as an installed package has them.
With --baseline the measured runs of steps 3-5 alternate (A B A B …), so both trees
see the same machine load. With --share-library the baseline does not sync a library
of its own (a first sync of 30,000 took the old code 41 min): it measures steps 3-5 on
the tree's library (the same folder and emulator) with a copy of the tree's state
database written back to the baseline's schema (`schema_down`: the later migrations
are indexes only, dropped), so both read the same rows. The emulator is always the tree's own unless
--emulator-tree names the checkout whose emulator both use.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pstats
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from _common import (
    THIS,
    EmulatorProcess,
    Tree,
    bench_env,
    command_line,
    count_sidecars,
    cpu_ticks,
    daemon_memory,
    machine,
    request_delta,
    run_cli,
    table,
    write_config,
    write_pngs,
)

TARGETS = {"noop_3000": 1.5, "noop_100000": 20.0, "status": 2.0, "memory_mib": 250.0}


@dataclass
class Side:
    """One tree's library of one size: its files, emulator and figures."""

    name: str
    tree: Tree
    work: Path
    size: int
    emu: EmulatorProcess | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    shared_from: Side | None = None  # measures that side's library (--share-library)

    @property
    def folder(self) -> Path:
        return (self.shared_from or self).work / "media"

    def config(self, name: str) -> Path:
        return self.work / name


# -- first sync -----------------------------------------------------------------


def first_sync(side: Side, spy: float) -> None:
    """The measured first sync; fills side.figures["first"]."""
    assert side.emu is not None
    emu = side.emu
    cfg = write_config(side.work, emu.url, side.folder, name="setup.toml", settle="0s",
                       requests_per_minute=1_000_000, max_uploads=8, max_generations=16,
                       log_level="warning")
    write_config(side.work, emu.url, side.folder, name="default.toml")
    log = side.work / "setup.log"
    cmd = [*_cmd(side.tree), "-c", str(cfg), "sync"]
    samples: list[tuple[float, int]] = []
    spied: dict[str, Any] = {}
    with open(log, "ab") as out:
        _child_cpu()  # from here on: this sync's
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                env=bench_env(side.tree))
        spy_thread = None
        while proc.poll() is None:
            time.sleep(2.0)
            try:
                done = emu.requests().get("generate", 0)
            except OSError:
                continue
            samples.append((time.monotonic() - t0, done))
            if spy and spy_thread is None and done >= side.size // 2 and _py_spy():
                spy_thread = threading.Thread(target=_spy_both, args=(
                    {"daemon": proc.pid, "emulator": emu.proc.pid}, spy, side.work, spied))
                spy_thread.start()
            if time.monotonic() - t0 > 4 * 3600:
                proc.kill()
                raise SystemExit(f"first sync of {side.size} ran over 4 h; see {log}")
        wall = time.monotonic() - t0
        daemon_cpu = _child_cpu()
        if spy_thread is not None:
            spy_thread.join()
    emu_cpu = cpu_ticks(emu.proc.pid) / os.sysconf("SC_CLK_TCK")
    captions = count_sidecars(side.folder)
    samples.append((wall, emu.requests().get("generate", 0)))
    per_minute = _per_minute(samples)
    side.figures["first"] = {
        "exit": proc.returncode, "wall_s": round(wall, 1), "captions": captions,
        "per_minute": per_minute, "daemon_cpu_s": round(daemon_cpu, 1),
        "emulator_cpu_s": round(emu_cpu, 1), "spy": spied,
    }
    print(f"  [{side.name}] first sync of {side.size}: exit {proc.returncode}, {wall:.1f} s, "
          f"{captions} captions; a minute: {per_minute}; CPU daemon {daemon_cpu:.0f} s, "
          f"emulator {emu_cpu:.0f} s", flush=True)
    for who, top in spied.items():
        print(f"  [{side.name}] py-spy, {who}, {top['samples']} samples over {spy:.0f} s "
              f"from the middle of the sync; % of samples a function is on the stack, "
              f"and on top:")
        for (name, pct), (own, own_pct) in zip(top["inclusive"], top["own"], strict=False):
            print(f"      {pct:5.1f}  {name:<70.70}  {own_pct:5.1f}  {own}")
    if proc.returncode != 0 or captions != side.size:
        raise SystemExit(f"first sync failed; see {log}")


_CHILD_CPU = [0.0]


def _child_cpu() -> float:
    """CPU seconds of the children reaped since the last call (the sync just ended)."""
    r = os.times()
    total = r.children_user + r.children_system
    spent, _CHILD_CPU[0] = total - _CHILD_CPU[0], total
    return spent


def _per_minute(samples: list[tuple[float, int]]) -> list[int]:
    """Captions in each whole minute since the start, from (seconds, count) samples;
    the last, partial minute is left out."""
    out, last = [], 0
    end = samples[-1][0] if samples else 0.0
    for minute in range(1, int(end // 60) + 1):
        # the latest sample at or before the minute's end
        count = max((c for s, c in samples if s <= minute * 60), default=0)
        out.append(count - last)
        last = count
    return out


def _py_spy() -> str:
    """py-spy on PATH, or beside the Python running this (a .venv not activated)."""
    here = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(here) if here.exists() else "")


def _spy_both(pids: dict[str, int], seconds: float, work: Path, into: dict[str, Any]) -> None:
    procs = {}
    for name, pid in pids.items():
        raw = work / f"spy-{name}.txt"
        procs[name] = (raw, subprocess.Popen(
            [_py_spy(), "record", "--pid", str(pid), "--duration", str(int(seconds)),
             "--rate", "50", "--format", "raw", "--nonblocking", "--output", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for name, (raw, p) in procs.items():
        p.wait(timeout=seconds + 120)
        if raw.exists():
            into[name] = top_frames(raw.read_text())


_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def top_frames(collapsed: str, most: int = 12) -> dict[str, Any]:
    """Where a py-spy raw (collapsed) profile spends its samples: per function, the
    share of samples it is on the stack (inclusive) and on top (own)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        names = []
        for frame in stack.split(";"):
            m = _FRAME.match(frame)
            name = f"{m.group(1)} ({_short(m.group(2))})" if m else frame
            names.append(name)
        for name in set(names[1:]):  # the first frame is the thread
            inclusive[name] += n
        if len(names) > 1:
            own[names[-1]] += n
    pct = (lambda c: [[k, round(100 * v / total, 1)] for k, v in c.most_common(most)]) \
        if total else (lambda c: [])
    return {"samples": total, "inclusive": pct(inclusive), "own": pct(own)}


def _short(path: str) -> str:
    for marker in ("/mediasync/", "/lib/python3"):
        i = path.rfind(marker)
        if i >= 0:
            return path[i + 1:]
    return path


# Indexes a later schema added, by the version that added it; schema_down drops them.
_LATER_INDEXES = {4: "paths_stat"}


def schema_down(db: Path, version: int) -> None:
    """Write a state database back to schema `version` where the later migrations
    only added indexes (the rows are the same)."""
    con = sqlite3.connect(db)
    try:
        have = con.execute("PRAGMA user_version").fetchone()[0]
        for v in range(have, version, -1):
            if v not in _LATER_INDEXES:
                raise SystemExit(f"{db}: schema {v} is not an index only; cannot share")
            con.execute(f"DROP INDEX IF EXISTS {_LATER_INDEXES[v]}")
        con.execute(f"PRAGMA user_version={min(have, version)}")
        con.commit()
    finally:
        con.close()


def share_library(side: Side) -> None:
    """Give `side` the synced library of side.shared_from: its folder and emulator, and a
    copy of its state database at `side`'s own schema."""
    src = side.shared_from
    assert src is not None and src.emu is not None
    side.emu = src.emu
    side.work.mkdir(parents=True, exist_ok=True)
    state = side.work / "state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir()
    a, b = sqlite3.connect(src.work / "state" / "state.db"), sqlite3.connect(state / "state.db")
    try:
        a.backup(b)  # a consistent copy, WAL included
    finally:
        a.close()
        b.close()
    version = int(subprocess.run(
        [side.tree.python, "-c", "import mediasync.store as s; print(s.SCHEMA_VERSION)"],
        capture_output=True, text=True, check=True, env=bench_env(side.tree),
        cwd=side.tree.root).stdout)  # its own package, not the one in this directory
    schema_down(state / "state.db", version)
    write_config(side.work, side.emu.url, side.folder, name="default.toml")
    print(f"  [{side.name}] measures [{src.name}]'s library: a copy of its state at "
          f"schema {version}", flush=True)


# -- a kept library, reloaded (--keep, then --reuse) ---------------------------------

SAVED_FILES = "emulator-files.json"  # the emulator's files after the first sync


def save_library(side: Side) -> None:
    """Keep the emulator's files beside the folder and state: the emulator holds them in
    memory, so without them a kept library could not be measured again."""
    assert side.emu is not None
    with urllib.request.urlopen(f"{side.emu.url}/_emulator/files", timeout=600) as r:
        (side.work / SAVED_FILES).write_bytes(r.read())


def reuse(side: Side, flags: list[str], emulator_tree: Tree | None) -> bool:
    """Measure a library an earlier --keep run synced: its emulator restarted with the
    saved files (`mediasync emulator --files`) on the port the state recorded, so the
    copies' URIs match. False when there is none to reuse."""
    saved = side.work / SAVED_FILES
    setup = side.work / "setup.toml"
    if not (saved.is_file() and setup.is_file()):
        return False
    port = re.search(r'base_url = "http://127\.0\.0\.1:(\d+)"', setup.read_text())
    flags = [*flags, "--files", str(saved), *(["--port", port.group(1)] if port else [])]
    side.emu = EmulatorProcess(side.work, flags=flags, tree=emulator_tree or side.tree)
    write_config(side.work, side.emu.url, side.folder, name="default.toml")
    print(f"  [{side.name}] reusing the synced library in {side.work} "
          f"({side.emu.stats()['live_files']} files in the emulator)", flush=True)
    return True


# -- the measured steps -----------------------------------------------------------


def noop(side: Side) -> None:
    assert side.emu is not None
    before = side.emu.requests()
    code, seconds = run_cli(side.config("default.toml"), "sync", log=side.work / "noop.log",
                            timeout=3600, tree=side.tree)
    reqs = request_delta(before, side.emu.requests())
    reqs.pop("control", None)
    if code != 0:
        raise SystemExit(f"[{side.name}] no-op sync exited {code}; see {side.work / 'noop.log'}")
    # A no-op lists the remote files and looks up the configured model once (models.get:
    # a retired one is held before any call); anything else is work.
    other = {k: v for k, v in reqs.items()
             if k != "list" and not (k == "models.get" and v <= 1)}
    side.figures.setdefault("noop_s", []).append(round(seconds, 2))
    side.figures.setdefault("noop_requests", []).append(reqs)
    print(f"  [{side.name}] no-op sync: {seconds:.2f} s, {reqs}"
          f"{'  (NOT a no-op)' if other else ''}", flush=True)


def status(side: Side, *flags: str) -> None:
    key = "status" + "".join(f" {f}" for f in flags)
    t0 = time.perf_counter()
    proc = subprocess.run([*_cmd(side.tree), "-c", str(side.config("default.toml")), "status",
                           *flags], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=bench_env(side.tree), timeout=1800,
                          check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"[{side.name}] {key} exited {proc.returncode}: {proc.stderr[-500:]!r}")
    side.figures.setdefault(key, []).append(round(seconds, 2))
    print(f"  [{side.name}] {key}: {seconds:.2f} s", flush=True)


def memory(side: Side, rescan_every: float) -> None:
    assert side.emu is not None
    cfg = write_config(side.work, side.emu.url, side.folder, name="run.toml",
                       rescan_every=f"{rescan_every}s")
    m = daemon_memory(cfg, side.work / "run.log", rescan_every, tree=side.tree,
                      timeout=max(300.0, side.size / 100))
    side.figures.setdefault("memory", []).append(asdict(m))
    print(f"  [{side.name}] daemon: watching after {m.ready_s:.1f} s, idle after "
          f"{m.idle_s:.1f} s ({m.rss_idle / 1024:.1f} MiB); rescan {m.rescan_cpu_s:.2f} s CPU; "
          f"peak {m.hwm_rescan / 1024:.1f} MiB", flush=True)


def profile(side: Side, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for what, args in (("noop", ["sync"]), ("status", ["status"])):
        prof = out / f"{side.name}-{side.size}-{what}.prof"
        cmd = [side.tree.python, "-m", "cProfile", "-o", str(prof), "-m", "mediasync", "-c",
               str(side.config("default.toml")), *args]
        t0 = time.perf_counter()
        subprocess.run(cmd, env=bench_env(side.tree), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3600,
                       check=True)
        print(f"\n  [{side.name}] profiled {what} of {side.size}: "
              f"{time.perf_counter() - t0:.2f} s under cProfile -> {prof}")
        stats = pstats.Stats(str(prof))
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)


def _cmd(tree: Tree) -> list[str]:
    from _common import mediasync_cmd
    return mediasync_cmd(tree)


# -- the run ----------------------------------------------------------------------


def run_size(size: int, trees: dict[str, Tree], emulator_tree: Tree | None, root: Path,
             args: argparse.Namespace) -> list[Side]:
    print(f"\n== {size} files ==", flush=True)
    sides = [Side(name, tree, root / f"{name}-{size}", size) for name, tree in trees.items()]
    if args.share_library:
        for side in sides[1:]:
            side.shared_from = sides[0]
    try:
        for side in sides:
            if side.shared_from is not None:
                share_library(side)
                continue
            flags = ["--quota-rpm", str(args.quota_rpm)] if args.quota_rpm else []
            if args.reuse and reuse(side, flags, emulator_tree):
                continue
            t0 = time.perf_counter()
            write_pngs(side.folder, size, width=4, height=4,
                       subdirs=max(1, math.ceil(size / args.per_dir)))
            print(f"  [{side.name}] wrote {size} PNGs ({time.perf_counter() - t0:.1f} s)",
                  flush=True)
            side.emu = EmulatorProcess(side.work, flags=flags,
                                       tree=emulator_tree or side.tree)
            first_sync(side, args.spy)
            if args.keep:
                save_library(side)
        for _ in range(args.repeat):
            for side in sides:
                noop(side)
        for flags in ((), ("--brief",), ("--json",)):
            for _ in range(args.repeat):
                for side in sides:
                    status(side, *flags)
        if not args.no_memory:
            for side in sides:
                memory(side, args.rescan_every)
        if args.profile:
            profile(sides[0], args.profile)
    finally:
        for side in sides:
            if side.emu is not None:
                side.emu.stop()
    return sides


def report(all_sides: list[Side]) -> None:
    rows = []
    for s in all_sides:
        f = s.figures
        first = f.get("first", {})
        mem = f.get("memory", [])
        rows.append([
            s.size, s.name,
            _med(f.get("noop_s")), _med(f.get("status")), _med(f.get("status --brief")),
            _med(f.get("status --json")),
            f"{max(m['hwm_rescan'] for m in mem) / 1024:.0f}" if mem else "-",
            f"{mem[0]['rescan_cpu_s']:.1f}" if mem else "-",
            first.get("wall_s", "-"), _minutes(first.get("per_minute", [])),
        ])
    print()
    print(table(rows, ["files", "tree", "no-op sync s", "status s", "status --brief s",
                       "status --json s", "daemon peak MiB", "rescan CPU s",
                       "first sync s", "first sync captions a minute"]))
    print("figures: median of the runs; no-op and status: wall time from spawn to exit")
    print(f"targets: no-op 3,000 < {TARGETS['noop_3000']} s, 100,000 < "
          f"{TARGETS['noop_100000']} s; status < {TARGETS['status']} s; daemon < "
          f"{TARGETS['memory_mib']:.0f} MiB")


def _med(values: list[float] | None) -> str:
    if not values:
        return "-"
    return f"{median(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})"


def _minutes(per_minute: list[int]) -> str:
    if len(per_minute) <= 8:
        return ", ".join(map(str, per_minute)) or "-"
    head = ", ".join(map(str, per_minute[:4]))
    tail = ", ".join(map(str, per_minute[-3:]))
    return f"{head} … {tail} ({len(per_minute)} min)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="3000,30000,100000", help="library sizes, comma-separated")
    ap.add_argument("--per-dir", type=int, default=200, help="files per sub-folder")
    ap.add_argument("--repeat", type=int, default=3, help="measured runs of each step")
    ap.add_argument("--tree", type=Path, help="the checkout under test (default: this one)")
    ap.add_argument("--baseline", type=Path, help="another checkout (with .venv) to run beside")
    ap.add_argument("--share-library", action="store_true",
                    help="the baseline measures the tree's synced library (no first sync)")
    ap.add_argument("--emulator-tree", type=Path,
                    help="the checkout whose emulator both use (default: each its own)")
    ap.add_argument("--quota-rpm", type=int, help="the emulator's generate quota a minute")
    ap.add_argument("--rescan-every", type=float, default=60.0,
                    help="daemon.rescan_every for the memory step, s")
    ap.add_argument("--no-memory", action="store_true", help="skip the daemon memory step")
    ap.add_argument("--spy", type=float, default=0.0,
                    help="py-spy the first sync for this many seconds from its middle")
    ap.add_argument("--profile", type=Path, help="cProfile a no-op sync and a status into DIR")
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it")
    ap.add_argument("--reuse", action="store_true",
                    help="with --keep: measure the library an earlier --keep run synced there "
                    "(no new first sync)")
    ap.add_argument("--json", type=Path, help="also write every figure to this file")
    args = ap.parse_args()

    print(f"$ {command_line()}")
    print(f"machine: {machine()}")
    trees = {"this": Tree(args.tree.resolve()) if args.tree else THIS}
    if args.baseline:
        trees["baseline"] = Tree(args.baseline.resolve())
        print(f"baseline: {args.baseline.resolve()}")
    emulator_tree = Tree(args.emulator_tree.resolve()) if args.emulator_tree else None
    for tree in trees.values():
        # As an installed package has them: without, every run of a tree compiles its
        # ~100 modules again where PYTHONDONTWRITEBYTECODE is set (~0.5 s a start).
        subprocess.run([tree.python, "-m", "compileall", "-q", str(tree.root / "mediasync")],
                       check=True, stdout=subprocess.DEVNULL)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    all_sides: list[Side] = []
    tmp = None
    if args.keep:
        root = args.keep
        root.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-scale-")
        root = Path(tmp.name)
    try:
        for size in sizes:
            all_sides += run_size(size, trees, emulator_tree, root, args)
            report(all_sides)
            if not args.keep:
                for side in all_sides[-len(trees):]:
                    shutil.rmtree(side.work, ignore_errors=True)
    finally:
        if args.json:
            args.json.write_text(json.dumps(
                [{"tree": s.name, "root": str(s.tree.root), "size": s.size, **s.figures}
                 for s in all_sides], indent=1))
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
