"""Quotas and idle traffic (issue 9), side by side in one run.

    .venv/bin/python bench/quota.py                      # all four parts
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
4. idle: one refresh of M mirrored files counted on the emulator, then requests
   per day from the default schedule (virtual clock: jobs x their measured cost).
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
    write_config,
    write_pngs,
)
from pipeline import run_sdk


class QuotaEmulator(EmulatorProcess):
    def __init__(self, workdir: Path, *, latency: float, flags: list[str], name: str) -> None:
        import re

        cmd = [*mediasync_cmd(), "emulator", "--host", "127.0.0.1", "--port", "0",
               "--generate-latency", f"{latency}s", *flags]
        self.log_path = workdir / f"{name}.log"
        workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log,
                                     env=bench_env(), text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if not m:
            raise SystemExit(f"emulator did not start: {line!r}")
        self.url, self.cmd = m.group(1), cmd


def part1(work: Path, count: int) -> dict:
    sdk = run_sdk(work, count, 0.5)
    sub = work / "p1"
    folder = sub / "media"
    write_pngs(folder, count)
    with QuotaEmulator(sub, latency=0.5, flags=["--quota-rpm", "1000", "--quota-tier", "paid"],
                       name="emu") as emu:
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
    with QuotaEmulator(sub, latency=0.5, flags=["--quota-rpm", "10"], name="emu") as emu:
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
    with QuotaEmulator(sub, latency=0.1, flags=["--quota-rpd", "20"], name="emu") as emu:
        cfg = write_config(sub, emu.url, folder, settle="0s", refresh_every="2s",
                           rescan_every="3s")
        cfg.write_text(cfg.read_text() + PROMPTS_TWO_MODELS)
        code, seconds = run_cli(cfg, "sync", log=sub / "sync.log", timeout=600)
        after_sync = emu.stats()["quota"]
        log = open(sub / "run.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([*mediasync_cmd(), "-c", str(cfg), "run"], stdout=log,
                                stderr=log, env=bench_env())
        time.sleep(run_for)
        from _common import stop_daemon

        stop_daemon(proc)
        log.close()
        after_run = emu.stats()["quota"]
        status = subprocess.run([*mediasync_cmd(), "-c", str(cfg), "status", "--json"],
                                capture_output=True, text=True, env=bench_env(), check=False)
    st = json.loads(status.stdout)
    stderr = (sub / "sync.log").read_text()
    line = next((ln for ln in stderr.splitlines() if "daily quota" in ln), "")
    return {"exit": code, "after_sync": after_sync, "after_run": after_run,
            "paused": st.get("paused"), "log": line.strip()}


def part4(work: Path, files: int) -> dict:
    """One refresh over ``files`` mirrored copies, counted on the emulator."""
    sys.path.insert(0, str(ROOT))
    from mediasync.gemini import GeminiClient

    sub = work / "p4"
    sub.mkdir()
    with QuotaEmulator(sub, latency=0, flags=[], name="emu") as emu:
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
        per_refresh = request_delta(before, emu.requests()).get("list", 0)
    sys.path.insert(0, str(ROOT))
    from mediasync.config import DEFAULT_DAEMON, parse_duration
    from mediasync.media import FILE_TTL_SECONDS

    refresh = parse_duration(DEFAULT_DAEMON["refresh_every"])
    renew_before = parse_duration(DEFAULT_DAEMON["renew_before"])
    day = 86400.0
    listings = day / refresh * per_refresh
    # Each copy is replaced every (48 h - renew_before): upload start + 1 chunk + delete.
    renewals = files * day / (FILE_TTL_SECONDS - renew_before)
    return {"files": files, "listed": listed, "fill_s": fill_s, "per_refresh": per_refresh,
            "refresh_s": refresh, "listing_requests_per_day": listings,
            "renewals_per_day": renewals, "renewal_requests_per_day": renewals * 3,
            "old_default_listing_per_day": day / 30 * per_refresh}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="1,2,3,4")
    ap.add_argument("--count", type=int, default=200, help="images in part 1")
    ap.add_argument("--free-count", type=int, default=60, help="images in part 2")
    ap.add_argument("--idle-files", type=int, default=10_000, help="mirrored files in part 4")
    ap.add_argument("--run-for", type=float, default=20.0, help="daemon seconds in part 3")
    args = ap.parse_args()
    parts = {int(p) for p in args.parts.split(",") if p.strip()}
    print(f"$ {command_line()}")
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-quota-") as tmp:
        work = Path(tmp)
        if 1 in parts:
            r = part1(work, args.count)
            print(f"1. paid key, {args.count} images, 0.5 s latency: sdk {r['sdk_s']:.1f} s, "
                  f"mediasync {r['ms_s']:.1f} s (exit {r['exit']}, {r['sidecars']} sidecars) "
                  f"= {r['ratio']:.3f} of the sdk's time (target <= 0.167); "
                  f"refused {r['refused']}", flush=True)
        if 2 in parts:
            r = part2(work, args.free_count)
            print(f"2. free tier 10/min, {args.free_count} images: {r['seconds']:.1f} s "
                  f"(exit {r['exit']}, {r['sidecars']} sidecars), {r['per_min']:.2f} images/min "
                  f"over the whole run; ideal at the limit {r['ideal_s']:.0f} s, mediasync "
                  f"{r['vs_ideal'] * 100:+.1f} % of it (target within 10 %); refused generate "
                  f"calls {r['refused']} (target <= 2)", flush=True)
        if 3 in parts:
            r = part3(work, 30, args.run_for)
            print(f"3. day quota 20/model, 30 images x 2 models: sync exit {r['exit']}; "
                  f"refused after sync {r['after_sync']['refused']}; after {args.run_for:.0f} s "
                  f"of `run` {r['after_run']['refused']} (admitted {r['after_run']['admitted']})",
                  flush=True)
            print(f"   log: {r['log']}")
            print(f"   status --json paused: {json.dumps(r['paused'])}", flush=True)
        if 4 in parts:
            r = part4(work, args.idle_files)
            print(f"4. idle, {r['files']} mirrored files ({r['listed']} listed; filled in "
                  f"{r['fill_s']:.0f} s): one refresh = {r['per_refresh']} list requests; "
                  f"refresh every {r['refresh_s'] / 3600:g} h = "
                  f"{r['listing_requests_per_day']:.0f} requests/day (was "
                  f"{r['old_default_listing_per_day']:.0f} at 30 s); renewals "
                  f"{r['renewals_per_day']:.0f}/day x 3 requests = "
                  f"{r['renewal_requests_per_day']:.0f} requests/day", flush=True)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
