"""Upload proxies (issue 15), benchmark 3: a 4K video over 2 GB and a 1-hour audio
file, uploaded as the original and as a proxy, side by side in one run.

    .venv/bin/python bench/proxy.py                    # 4K video > 2 GB, 1 h WAV
    .venv/bin/python bench/proxy.py --video-gb 0.3 --audio-min 10   # a quick look

The media are made with FFmpeg's test sources through PyAV (no ffmpeg program
needed): ``testsrc2`` at 3840×2160, 30 fps, with grain (so H.264 keeps it big, as a
phone's high-bitrate 4K is) and a ``sine`` track, until the file passes
``--video-gb``; and a 44.1 kHz stereo WAV of ``--audio-min`` minutes. They live in
``bench/out/`` (ignored by git), made once and reused.

Per file and upload mode (``upload = "original"`` | ``"proxy"``), one `mediasync
sync` against the emulator (its own process): bytes uploaded, the prompt tokens the
emulator reports for the caption or transcript, wall time. For the proxies also the
encode time and the peak memory of the encoding (``proxy.make`` in a child process,
its VmHWM). The original video is refused before a byte goes (over 2 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from _common import (
    ROOT,
    EmulatorProcess,
    cell,
    command_line,
    machine,
    request_delta,
    run_cli,
    status_json,
    table,
    write_config,
)

OUT = ROOT / "bench" / "out"


def make_video(path: Path, min_bytes: int) -> None:
    import av

    if path.exists() and path.stat().st_size >= min_bytes:
        return
    tmp = path.with_suffix(".tmp.mp4")
    src = "testsrc2=size=3840x2160:rate=30,noise=alls=12:allf=t"
    with av.open(src, format="lavfi") as inp, \
            av.open("sine=frequency=440:sample_rate=48000", format="lavfi") as snd, \
            av.open(str(tmp), "w", format="mp4") as out:
        v = out.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 3840, 2160, "yuv420p"
        v.options = {"preset": "ultrafast", "qp": "14"}
        a = out.add_stream("aac", rate=48000)
        a.layout = "stereo"
        audio = snd.decode(audio=0)
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
        written, t_audio, n = 0, 0.0, 0
        for frame in inp.decode(video=0):
            f = frame.reformat(format="yuv420p")
            f.pts, f.time_base = n, Fraction(1, 30)
            for p in v.encode(f):
                out.mux(p)
                written += p.size
            n += 1
            while t_audio < n / 30:  # the sound keeps up with the picture
                af = next(audio)
                t_audio += af.samples / af.sample_rate
                for r in resampler.resample(af):
                    for p in a.encode(r):
                        out.mux(p)
            if written >= min_bytes:
                break
        for p in v.encode(None):
            out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    tmp.rename(path)


def make_audio(path: Path, minutes: float) -> None:
    import av

    if path.exists():
        return
    tmp = path.with_suffix(".tmp.wav")
    spec = f"sine=frequency=330:sample_rate=44100:duration={minutes * 60}"
    with av.open(spec, format="lavfi") as snd, av.open(str(tmp), "w", format="wav") as out:
        a = out.add_stream("pcm_s16le", rate=44100)
        a.layout = "stereo"
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=44100)
        for frame in snd.decode(audio=0):
            for r in resampler.resample(frame):
                for p in a.encode(r):
                    out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    tmp.rename(path)


_ENCODE = """
import json, sys, time
from mediasync.media import proxy
t = time.perf_counter()
size, _ = proxy.make(sys.argv[1], sys.argv[2], proxy.Spec(sys.argv[3], int(sys.argv[4])))
secs = time.perf_counter() - t
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"bytes": size, "encode_s": round(secs, 1), "peak_rss_mib": hwm // 1024}))
"""


def encode(src: Path, dst: Path, kind: str) -> dict:
    """proxy.make in a child process: its time and its peak memory alone."""
    out = subprocess.run([sys.executable, "-c", _ENCODE, str(src), str(dst), kind,
                          "720" if kind == "video" else "0"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    return json.loads(out.stdout)


def sync(work: Path, media: Path, mode: str) -> dict:
    d = work / f"{media.stem}-{mode}"
    folder = d / "media"
    folder.mkdir(parents=True)
    os.link(media, folder / media.name)  # the same bytes, no copy
    with EmulatorProcess(d, flags=["--video-processing-delay", "1s"]) as emu:
        cfg = write_config(d, emu.url, folder, requests_per_minute=6000, settle="0s")
        (cfg.parent / "config.toml").write_text(
            cfg.read_text() + f'upload = "{mode}"\n')
        before = emu.stats()
        code, wall = run_cli(cfg, "sync", log=d / "sync.log")
        after = emu.stats()
        st = status_json(cfg)
    (f,) = st["files"]
    return {
        "file": media.name, "mode": mode, "exit": code, "wall_s": round(wall, 1),
        "original_bytes": media.stat().st_size,
        "bytes_uploaded": after["bytes_received"] - before["bytes_received"],
        "requests": request_delta(before["requests"], after["requests"]),
        "state": f["state"], "prompt_tokens": sum(s["prompt_tokens"] for s in f["sidecars"]),
        "copy": f["proxy"] or ("original" if f["remote_name"] else None),
        "refused": "too large" in (d / "sync.log").read_text()
                   or "exceeds the maximum" in (d / "sync.log").read_text(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video-gb", type=float, default=2.1, help="4K video size, GB")
    ap.add_argument("--audio-min", type=float, default=60.0, help="audio length, minutes")
    args = ap.parse_args()
    print(f"$ {command_line()}")
    print(f"machine: {machine()}")
    OUT.mkdir(parents=True, exist_ok=True)
    video = OUT / f"4k-{args.video_gb:g}GB.mp4"
    audio = OUT / f"tone-{args.audio_min:g}min.wav"
    t = time.perf_counter()
    make_video(video, int(args.video_gb * 1e9))
    make_audio(audio, args.audio_min)
    print(f"media ready in {time.perf_counter() - t:.0f} s: {video.name} "
          f"{video.stat().st_size / 1e9:.2f} GB, {audio.name} {audio.stat().st_size / 1e6:.0f} MB")
    with tempfile.TemporaryDirectory(prefix="bench-proxy-", dir=OUT) as tmp:
        work = Path(tmp)
        for media, kind in ((video, "video"), (audio, "audio")):
            made = encode(media, work / f"{media.stem}.proxy", kind)
            print(json.dumps({"file": media.name, "proxy_encode": made}), flush=True)
            runs = [sync(work, media, mode) for mode in ("original", "proxy")]
            for row in runs:
                print(json.dumps(row), flush=True)
            print(f"\n{media.name}: {media.stat().st_size:,} bytes\n")
            figures = ["exit", "state", "copy", "refused", "bytes_uploaded", "prompt_tokens",
                       "wall_s", "requests"]
            lines = [[k, *(cell(r[k]) for r in runs)] for k in figures]
            lines += [["proxy encode s (alone)", "", made["encode_s"]],
                      ["proxy encode peak RSS MiB", "", made["peak_rss_mib"]]]
            print(table(lines, ["figure", 'upload = "original"', 'upload = "proxy"']))
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
