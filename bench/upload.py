"""Upload throughput and peak memory: our client vs the google-genai SDK vs curl.

    .venv/bin/python bench/upload.py --size 1G

The emulator runs in a child process (multiprocessing), so the uploader under
test shares no GIL with the server. Each uploader runs in its own subprocess;
its peak RSS is VmHWM of that process alone (polled from /proc/<pid>/status,
and reported by the Python uploaders themselves at the end), interpreter and
imports included. (ru_maxrss from wait4 is not used: it inherits the forking
parent's high-water mark across exec.) Throughput counts the upload only (start to
final answer), not interpreter start-up.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)i?B?", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 256M, 1G)")
    return int(m.group(1)) * {"": 1, "K": 1024, "M": MIB, "G": 1024 * MIB}[m.group(2).upper()]


# -- emulator process ---------------------------------------------------------


def _serve(conn: Any, granularity: int, nodelay: bool) -> None:
    sys.path.insert(0, str(ROOT))
    from mediasync.emulator import Emulator, EmulatorConfig

    if nodelay:
        # http.server writes the headers and the body of an answer in two
        # send()s; with Nagle on, the body waits for the client's delayed ACK
        # (~40 ms on Linux) on *every* request. That is a server artefact the
        # live service doesn't have, and it would hide the clients' own speed.
        from mediasync.emulator import server

        server.Handler.disable_nagle_algorithm = True

    emu = Emulator(EmulatorConfig(port=0, granularity=granularity)).start()
    conn.send(emu.base_url)
    conn.recv()  # any message: stop
    emu.stop()


# -- uploaders (each runs in its own subprocess) --------------------------------


def vm_hwm_mib(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def wait_hwm(proc: subprocess.Popen[Any]) -> tuple[int, float]:
    """Wait for ``proc``, polling its peak RSS; (exit code, MiB)."""
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, vm_hwm_mib(proc.pid))
        time.sleep(0.005)
    return proc.returncode, peak


def child_ours(base_url: str, path: str, chunk: int) -> dict[str, Any]:
    import asyncio

    from mediasync.gemini import GeminiClient

    async def go() -> tuple[float, int | None]:
        async with GeminiClient("bench-key", base_url, chunk_size=chunk) as client:
            t0 = time.perf_counter()
            f = await client.upload(path, "video/mp4", "bench")
            return time.perf_counter() - t0, f.size_bytes

    seconds, size = asyncio.run(go())
    return {"seconds": seconds, "size": size, "rss": vm_hwm_mib()}


def child_sdk(base_url: str, path: str, chunk: int) -> dict[str, Any]:
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key="bench-key",
        http_options=types.HttpOptions(base_url=base_url, api_version="v1beta"),
    )
    t0 = time.perf_counter()
    f = client.files.upload(file=path, config={"mime_type": "video/mp4", "display_name": "bench"})
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "size": f.size_bytes, "rss": vm_hwm_mib()}


def run_child(kind: str, base_url: str, path: str, chunk: int) -> dict[str, Any]:
    """Run one uploader; return its result plus its own peak RSS."""
    with tempfile.TemporaryFile("w+") as out:
        if kind == "curl":
            return run_curl(base_url, path)
        if kind == "curl-chunked":
            return run_curl_chunked(base_url, path, chunk)
        cmd = [sys.executable, __file__, "--child", kind, base_url, path, str(chunk)]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(cmd, stdout=out, env=env)
        code, peak = wait_hwm(proc)
        if code != 0:
            raise SystemExit(f"{kind} uploader failed ({code})")
        out.seek(0)
        result = json.loads(out.read())
    result["rss"] = max(result["rss"], peak)
    return result


def _curl_start(base_url: str, size: int) -> str:
    start = subprocess.run(
        [
            "curl", "-sS", "-D", "-", "-o", "/dev/null", "-X", "POST",
            f"{base_url}/upload/v1beta/files",
            "-H", "x-goog-api-key: bench-key",
            "-H", "X-Goog-Upload-Protocol: resumable",
            "-H", "X-Goog-Upload-Command: start",
            "-H", f"X-Goog-Upload-Header-Content-Length: {size}",
            "-H", "X-Goog-Upload-Header-Content-Type: video/mp4",
            "-H", "Content-Type: application/json",
            "--data", '{"file": {"display_name": "bench"}}',
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    m = re.search(r"(?im)^x-goog-upload-url:\s*(\S+)", start.stdout)
    if not m:
        raise SystemExit(f"curl start: no upload URL in\n{start.stdout}")
    return m.group(1)


def _curl_chunk(url: str, command: str, offset: int, source: list[str], data: bytes | None) -> Any:
    """One chunk request in its own curl process: (body, its peak RSS MiB)."""
    cmd = [
        "curl", "-sS", "-X", "POST", url, *source, "-H", "Expect:",
        "-H", f"X-Goog-Upload-Command: {command}", "-H", f"X-Goog-Upload-Offset: {offset}",
    ]  # fmt: skip
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stdin=subprocess.PIPE if data else None)
        if data is not None and proc.stdin is not None:
            proc.stdin.write(data)
            proc.stdin.close()
        code, peak = wait_hwm(proc)
        out.seek(0)
        body = out.read()
    if code != 0:
        raise SystemExit(f"curl upload failed ({code}): {body[:300]}")
    return body, peak


def run_curl(base_url: str, path: str) -> dict[str, Any]:
    """curl speaks the resumable protocol: start, then one `upload, finalize`
    streaming the whole file with -T (curl reads it in small buffers)."""
    url = _curl_start(base_url, os.path.getsize(path))
    t0 = time.perf_counter()
    body, rss = _curl_chunk(url, "upload, finalize", 0, ["-T", path], None)
    seconds = time.perf_counter() - t0
    size = int(json.loads(body)["file"]["sizeBytes"])
    return {"seconds": seconds, "size": size, "rss": rss}


def run_curl_chunked(base_url: str, path: str, chunk: int) -> dict[str, Any]:
    """curl in `chunk`-sized requests like the SDK: one curl process per chunk
    (process start-up included), each body piped in with --data-binary @-."""
    size = os.path.getsize(path)
    url = _curl_start(base_url, size)
    rss = 0.0
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        offset = 0
        while True:
            data = f.read(chunk)
            last = offset + len(data) >= size
            command = "upload, finalize" if last else "upload"
            body, peak = _curl_chunk(url, command, offset, ["--data-binary", "@-"], data)
            rss = max(rss, peak)
            offset += len(data)
            if last:
                break
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "size": int(json.loads(body)["file"]["sizeBytes"]), "rss": rss}


# -- main -----------------------------------------------------------------------


def clear_remote(base_url: str) -> None:
    """Delete every file between runs, or 1 GiB runs fill the 20 GB quota."""
    import httpx

    headers = {"x-goog-api-key": "bench-key"}
    with httpx.Client(base_url=base_url, headers=headers) as http:
        while names := [f["name"] for f in http.get("/v1beta/files").json().get("files", [])]:
            for name in names:
                http.delete(f"/v1beta/{name}").raise_for_status()


def make_file(path: Path, size: int) -> None:
    block = MP4_HEAD + os.urandom(MIB - len(MP4_HEAD))
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, MIB)
            f.write(block[:n])
            left -= n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, default=parse_size("1G"))
    ap.add_argument("--chunk", type=parse_size, default=parse_size("8M"), help="our chunk target")
    ap.add_argument("--granularity", type=parse_size, default=parse_size("8M"))
    ap.add_argument("--runs", type=int, default=3, help="runs per uploader (interleaved)")
    ap.add_argument("--only", default="ours,sdk,curl,curl-chunked")
    ap.add_argument(
        "--nagle",
        dest="nodelay",
        action="store_false",
        help="leave Nagle on in the emulator (adds ~40 ms per request)",
    )
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        kind, base_url, path, chunk = args.child
        fn = {"ours": child_ours, "sdk": child_sdk}[kind]
        print(json.dumps(fn(base_url, path, int(chunk))))
        return

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child, args.granularity, args.nodelay), daemon=True)
    server.start()
    base_url = parent.recv()
    try:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
            path = Path(tmp) / "bench.mp4"
            make_file(path, args.size)
            print(f"file {args.size / MIB:.0f} MiB, emulator {base_url}, runs {args.runs}")
            kinds = args.only.split(",")
            results: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
            for _ in range(args.runs):  # interleaved, so a busy moment hits everyone
                for kind in kinds:
                    r = run_child(kind, base_url, str(path), args.chunk)
                    if r["size"] != args.size:
                        raise SystemExit(f"{kind}: server holds {r['size']} bytes")
                    results[kind].append(r)
                    clear_remote(base_url)
            print(f"{'uploader':<13} {'best MiB/s':>10} {'median MiB/s':>12} {'peak RSS MiB':>13}")
            for kind, runs in results.items():
                speeds = sorted(args.size / MIB / r["seconds"] for r in runs)
                rss = max(r["rss"] for r in runs)
                median = speeds[len(speeds) // 2]
                print(f"{kind:<13} {speeds[-1]:>10.1f} {median:>12.1f} {rss:>13.1f}")
    finally:
        parent.send("stop")
        server.join(10)


if __name__ == "__main__":
    main()
