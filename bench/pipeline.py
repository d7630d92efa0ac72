"""Pipeline throughput: `mediasync sync` vs a sequential google-genai SDK script.

    .venv/bin/python bench/pipeline.py                 # 200 images, all rows
    .venv/bin/python bench/pipeline.py --count 40 --rows raised

N distinct PNGs (64x48, ~9 KB), emulator with 0.5 s of generateContent latency
and its default image processing delay (0 s: an image is ACTIVE as soon as its
upload finalizes). Each emulator runs in its own child process, fresh per row.

* sdk: a child process running the obvious sequential script with the official
  SDK: for each image files.upload, poll files.get until ACTIVE (0.1 s sleeps),
  models.generate_content([file, prompt]), write the sidecar.
* mediasync: `mediasync -c CFG sync` (the real CLI) with settle "0s" (a
  benchmark of pipeline throughput, not of the stability wait), default
  max_uploads=2 / max_generations=4, and requests_per_minute as given per row.

Both times are wall time from spawning the process to its exit (interpreter
start and imports included for both).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    EmulatorProcess,
    bench_env,
    command_line,
    count_sidecars,
    machine,
    request_delta,
    run_cli,
    table,
    write_config,
    write_pngs,
)

PROMPT = "Caption this image in one sentence."
MODEL = "gemini-2.5-flash"

# name -> (requests_per_minute, max_generations); max_uploads stays at its default 2.
# The default row runs last: it is bound by the rate limiter, not by the CPU.
ROWS = {
    "raised": (2000, 4),
    "raised-gen8": (2000, 8),
    "default": (60, 4),
}


def sdk_child(base_url: str, folder: str) -> None:
    """The sequential SDK script (runs in its own process)."""
    from google import genai

    client = genai.Client(
        api_key="bench",
        http_options=genai.types.HttpOptions(base_url=base_url, api_version="v1beta"),
    )
    polls = 0
    for path in sorted(Path(folder).glob("*.png")):
        f = client.files.upload(file=str(path), config={"mime_type": "image/png"})
        deadline = time.monotonic() + 120
        while f.state is None or f.state.name != "ACTIVE":
            if f.state is not None and f.state.name == "FAILED":
                raise SystemExit(f"{path.name}: processing FAILED")
            if time.monotonic() > deadline:
                raise SystemExit(f"{path.name}: not ACTIVE after 120 s")
            time.sleep(0.1)
            f = client.files.get(name=f.name)
            polls += 1
        r = client.models.generate_content(model=MODEL, contents=[f, PROMPT])
        tmp = path.with_name(f".{path.name}.caption.md.tmp")
        tmp.write_text((r.text or "").strip() + "\n")
        tmp.replace(path.with_name(path.name + ".caption.md"))
    print(json.dumps({"polls": polls}))


def run_sdk(work: Path, count: int, latency: float) -> dict:
    folder = work / "sdk-media"
    write_pngs(folder, count)
    with EmulatorProcess(work, generate_latency=latency, name="emu-sdk") as emu:
        before = emu.requests()
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--sdk-child", emu.url, str(folder)],
            capture_output=True, text=True, env=bench_env(), timeout=3600, check=False,
        )
        seconds = time.perf_counter() - t0
        reqs = request_delta(before, emu.requests())
    if proc.returncode != 0:
        raise SystemExit(f"SDK script failed:\n{proc.stderr[-3000:]}")
    return {"seconds": seconds, "sidecars": count_sidecars(folder), "requests": reqs}


def run_mediasync(work: Path, count: int, latency: float, rpm: int, max_gen: int) -> dict:
    sub = work / f"ms-{rpm}-{max_gen}"
    folder = sub / "media"
    write_pngs(folder, count)
    with EmulatorProcess(sub, generate_latency=latency, name="emu") as emu:
        cfg = write_config(sub, emu.url, folder, settle="0s", requests_per_minute=rpm,
                           max_generations=max_gen)
        before = emu.requests()
        code, seconds = run_cli(cfg, "sync", log=sub / "sync.log", timeout=3600)
        reqs = request_delta(before, emu.requests())
    if code != 0:
        raise SystemExit(f"mediasync sync exited {code}; see {sub / 'sync.log'}")
    return {"seconds": seconds, "sidecars": count_sidecars(folder), "requests": reqs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200, help="images (default 200)")
    ap.add_argument("--latency", type=float, default=0.5, help="generateContent latency, s")
    ap.add_argument("--rows", default=",".join(ROWS),
                    help=f"mediasync rows to run, comma-separated: {', '.join(ROWS)}")
    ap.add_argument("--sdk-child", nargs=2, metavar=("URL", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sdk_child:
        sdk_child(*args.sdk_child)
        return 0
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    for r in rows:
        if r not in ROWS:
            ap.error(f"unknown row {r!r}")

    print(f"$ {command_line()}")
    print(f"machine: {machine()}")
    print(f"{args.count} PNGs, generate latency {args.latency}s, image processing delay 0s "
          "(emulator default), settle 0s, max_uploads 2")
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        work = Path(tmp)
        results = []
        sdk = run_sdk(work, args.count, args.latency)
        print(f"  sdk: {sdk['seconds']:.1f}s {sdk['requests']}", flush=True)
        for r in rows:
            rpm, gen = ROWS[r]
            m = run_mediasync(work, args.count, args.latency, rpm, gen)
            print(f"  mediasync {r}: {m['seconds']:.1f}s {m['requests']}", flush=True)
            results.append((r, rpm, gen, m))
    out = [["sdk sequential", "-", "1", f"{sdk['seconds']:.1f}",
            f"{args.count / sdk['seconds']:.2f}", sum(sdk["requests"].values()),
            sdk["sidecars"], "1.0x"]]
    for r, rpm, gen, m in results:
        out.append([f"mediasync sync ({r})", rpm, gen, f"{m['seconds']:.1f}",
                    f"{args.count / m['seconds']:.2f}", sum(m["requests"].values()),
                    m["sidecars"], f"{sdk['seconds'] / m['seconds']:.2f}x"])
    print()
    print(table(out, ["run", "requests_per_minute", "max_generations", "wall s", "images/s",
                      "API requests", "sidecars", "speed-up vs sdk"]))
    print("requests by endpoint: sdk", sdk["requests"],
          *(f"| {r} {m['requests']}" for r, _, _, m in results))
    print("target: mediasync >= 8x the sequential SDK script")
    return 0


if __name__ == "__main__":
    sys.exit(main())
