"""The store is a budget (issue 15), benchmarks 1 and 2, side by side in one run.

    .venv/bin/python bench/budget.py                      # 60 photos of 200 kB
    .venv/bin/python bench/budget.py --count 30 --size 100kB

1. A library three times the store: `mediasync sync` of N photos against an emulator
   whose store holds a third of them (``--max-project-bytes``, full-store answers as
   wire/03 with its RetryInfo of 9223372036854775807 s), beside the same library
   against a store that holds it all. Rows: captions written, wall time, requests by
   endpoint, bytes uploaded, what `status` says of the store.
2. Renewal at 95% full: M photos filling 95% of the store, ``storage_budget =
   "100%"``, every copy due for renewal as soon as it is made (emulator ``--ttl 59m``,
   ``renew_before = "1h"``), so each `sync` renews every copy once; three syncs in a
   row. Rows per round: copies renewed, copies lapsed (no live copy at the end),
   storage-full refusals, wall time. Beside it the same with the default budget
   (90%), which keeps fewer copies alive by design (the others are "not kept").

The emulator runs in its own process, the daemon as the real CLI, all on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _common import (
    EmulatorProcess,
    cell,
    command_line,
    count_sidecars,
    machine,
    request_delta,
    run_cli,
    status_json,
    table,
    write_config,
)

from mediasync.media.samples import png_bytes
from mediasync.media.sizes import human_bytes, parse_size


def photos(folder: Path, count: int, size: int, first: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        head = png_bytes(seed=first + i)
        (folder / f"p{first + i:04}.png").write_bytes(head + bytes(max(0, size - len(head))))


def refused(before: dict, after: dict) -> int:
    """Upload starts the service refused (a full store answers the start): start
    requests that opened no session."""
    starts = after["requests"].get("start", 0) - before["requests"].get("start", 0)
    return starts - (after["uploads_started"] - before["uploads_started"])


def _count(log: Path, text: str) -> int:
    return log.read_text(errors="replace").count(text) if log.exists() else 0


def waited_for_space(log: Path) -> int:
    return _count(log, "waiting for space")


def library(work: Path, count: int, size: int, store: int | None, latency: float) -> dict:
    name = "fits" if store is None else "3x"
    d = work / name
    photos(d / "media", count, size)
    flags = ["--storage-form", "retryinfo"]
    if store is not None:
        flags += ["--max-project-bytes", str(store)]
    with EmulatorProcess(d, generate_latency=latency, flags=flags) as emu:
        cfg = write_config(d, emu.url, d / "media", requests_per_minute=6000, settle="0s")
        before = emu.stats()
        code, wall = run_cli(cfg, "sync", log=d / "sync.log")
        stats = emu.stats()
        reqs = request_delta(before["requests"], stats["requests"])
        st = status_json(cfg)
    return {
        "library": f"{count} × {human_bytes(size)} in a store of "
                   f"{human_bytes(store) if store else '20 GiB'}",
        "exit": code, "captions": count_sidecars(d / "media"), "wall_s": round(wall, 1),
        "uploads": stats["uploads_finalized"], "bytes_uploaded": stats["bytes_received"],
        "requests": reqs, "requests_total": sum(reqs.values()),
        "live_bytes_end": stats["live_bytes"],
        "not_kept": st["store"]["not_kept"], "budget": st["store"]["budget"],
        "starts_refused": refused(before, stats),
        "waited_for_space": waited_for_space(d / "sync.log"),
    }


def renewal(work: Path, count: int, size: int, budget: str, rounds: int) -> list[dict]:
    d = work / f"renew-{budget.rstrip('%')}"
    photos(d / "media", count, size, first=10_000)
    store = int(count * size / 0.95)
    flags = ["--max-project-bytes", str(store), "--ttl", "59m", "--storage-form", "retryinfo"]
    rows = []
    with EmulatorProcess(d, flags=flags) as emu:
        cfg = write_config(d, emu.url, d / "media", requests_per_minute=6000, settle="0s",
                           storage_budget=budget, renew_before="1h")
        for r in range(1, rounds + 1):
            log = d / f"sync{r}.log"
            before = emu.stats()
            code, wall = run_cli(cfg, "sync", log=log)
            after = emu.stats()
            reqs = request_delta(before["requests"], after["requests"])
            live = {f"files/{x}" for x in _live_ids(emu)}
            st = status_json(cfg)
            not_kept = [f for f in st["files"] if f["note"] and "storage budget" in f["note"]]
            kept = [f for f in st["files"] if f not in not_kept]
            rows.append({
                "budget": budget, "round": r, "exit": code, "wall_s": round(wall, 1),
                "store": human_bytes(store), "library": f"{count} × {human_bytes(size)}",
                "uploads": after["uploads_finalized"] - before["uploads_finalized"],
                "renewed": _count(log, " renewed "), "deletes": reqs.get("delete", 0),
                "kept_alive": sum(1 for f in kept if f["remote_name"] in live),
                "lapsed": sum(1 for f in kept if f["remote_name"] not in live),
                "not_kept_by_budget": len(not_kept),
                "starts_refused": refused(before, after),
                "waited_for_space": waited_for_space(log),
                "synced": sum(f["state"] == "synced" for f in st["files"]),
            })
    return rows


def _live_ids(emu: EmulatorProcess) -> list[str]:
    import urllib.request

    with urllib.request.urlopen(f"{emu.url}/v1beta/files?pageSize=100&key=bench") as r:
        page = json.loads(r.read())
    ids = [f["name"].removeprefix("files/") for f in page.get("files", [])]
    token = page.get("nextPageToken")
    while token:
        with urllib.request.urlopen(
                f"{emu.url}/v1beta/files?pageSize=100&pageToken={token}&key=bench") as r:
            page = json.loads(r.read())
        ids += [f["name"].removeprefix("files/") for f in page.get("files", [])]
        token = page.get("nextPageToken")
    return ids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=60, help="photos in benchmark 1")
    ap.add_argument("--size", default="200kB", help="size of each photo in benchmark 1")
    ap.add_argument("--renew-count", type=int, default=40, help="photos in benchmark 2")
    ap.add_argument("--renew-size", default="50kB", help="size of each in benchmark 2")
    ap.add_argument("--rounds", type=int, default=3, help="renewal rounds (syncs)")
    ap.add_argument("--latency", type=float, default=0.2, help="emulator generate latency, s")
    args = ap.parse_args()
    size, rsize = parse_size(args.size), parse_size(args.renew_size)
    print(f"$ {command_line()}")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-budget-") as tmp:
        work = Path(tmp)
        print("\n1. a library three times the store, beside one that fits\n")
        runs = [library(work, args.count, size, store, args.latency)
                for store in (None, args.count * size // 3)]
        keys = ["library", "exit", "captions", "wall_s", "uploads", "bytes_uploaded",
                "requests", "requests_total", "starts_refused", "waited_for_space",
                "live_bytes_end", "budget", "not_kept"]
        print(table([[k, *(cell(r[k]) for r in runs)] for k in keys],
                    ["figure", "store fits", "store = 1/3 of library"]))
        print(f"\n2. renewal at 95% full, every copy due at once, {args.rounds} rounds\n")
        rows = [row for budget in ("100%", "90%")
                for row in renewal(work, args.renew_count, rsize, budget, args.rounds)]
        keys = ["budget", "round", "exit", "wall_s", "uploads", "renewed", "deletes",
                "kept_alive", "lapsed", "not_kept_by_budget", "starts_refused",
                "waited_for_space", "synced"]
        print(f"{rows[0]['library']} in a store of {rows[0]['store']}\n")
        print(table([[cell(r[k]) for k in keys] for r in rows], keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
