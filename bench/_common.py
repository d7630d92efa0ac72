"""Shared helpers for the daemon benchmarks (pipeline, noop, latency, memory).

The emulator always runs in its own process (``mediasync emulator --port 0``),
the daemon under test always runs as the real CLI in another one, with
GEMINI_API_KEY=bench. Everything talks to 127.0.0.1 only; every wait here is
bounded by a deadline.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mediasync.media.samples import png_bytes  # noqa: E402

MIB = 1024 * 1024


@dataclass(frozen=True)
class Tree:
    """A checkout whose mediasync a bench runs: this one, or another (a baseline
    branch, e.g. from `git archive`) with its own ``.venv``, for side-by-side runs."""

    root: Path = ROOT

    @property
    def python(self) -> str:
        if self.root == ROOT:
            return sys.executable
        return str(self.root / ".venv" / "bin" / "python")


THIS = Tree()


def mediasync_cmd(tree: Tree = THIS) -> list[str]:
    """The real CLI: the console script next to the tree's interpreter, else ``-m mediasync``."""
    script = Path(tree.python).parent / "mediasync"
    if script.exists():
        return [str(script)]
    return [tree.python, "-m", "mediasync"]


def bench_env(tree: Tree = THIS) -> dict[str, str]:
    env = dict(os.environ, GEMINI_API_KEY="bench", PYTHONPATH=str(tree.root))
    for var in ("GOOGLE_API_KEY", "MEDIASYNC_CONFIG", "MEDIASYNC_STATE_DIR", "NOTIFY_SOCKET",
                "CREDENTIALS_DIRECTORY"):
        env.pop(var, None)
    return env


def command_line() -> str:
    """The exact command that produced a run, for the report."""
    exe = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else \
        sys.executable
    script = os.path.relpath(sys.argv[0], ROOT)
    return shlex.join([exe, script, *sys.argv[1:]])


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))})"
    system = f"{platform.system()} {platform.release()}"
    return f"{cores}{', ' + cpu if cpu else ''}; Python {platform.python_version()}; {system}"


# -- emulator -----------------------------------------------------------------


class EmulatorProcess:
    """``mediasync emulator`` in a child process; ``url`` is its base URL."""

    def __init__(self, workdir: Path, *, generate_latency: float = 0.0,
                 processing_delay: float | None = None, name: str = "emulator",
                 flags: Sequence[str] = (), env: dict[str, str] | None = None,
                 tree: Tree = THIS) -> None:
        """``flags`` are further ``mediasync emulator`` options (e.g. ``--quota-rpm 10``);
        ``env`` replaces bench_env() (e.g. to run it under libfaketime); ``tree``: whose
        emulator."""
        cmd = [*mediasync_cmd(tree), "emulator", "--host", "127.0.0.1", "--port", "0"]
        if generate_latency:
            cmd += ["--generate-latency", f"{generate_latency}s"]
        if processing_delay is not None:
            cmd += ["--processing-delay", f"{processing_delay}s"]
        cmd += flags
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log,
                                     env=env if env is not None else bench_env(tree), text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the emulator prints one line, then nothing
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if not m:
            self.stop()
            raise SystemExit(f"emulator did not start: {line!r}; see {self.log_path}")
        self.url = m.group(1)
        self.cmd = cmd

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_emulator/stats", timeout=10) as r:
            return json.loads(r.read())

    def requests(self) -> dict[str, int]:
        return dict(self.stats()["requests"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def request_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Requests per endpoint between two stats snapshots, the stats call itself excluded."""
    out = {}
    for k in sorted(set(before) | set(after)):
        n = after.get(k, 0) - before.get(k, 0)
        if k == "control":
            n -= 1  # one of the two stats requests themselves
        if n:
            out[k] = n
    return out


# -- files and config ---------------------------------------------------------


def write_pngs(folder: Path, count: int, *, first_seed: int = 0, width: int = 64,
               height: int = 48, subdirs: int = 0) -> list[Path]:
    """``count`` distinct valid PNGs; with ``subdirs``, spread over that many folders."""
    paths = []
    for i in range(count):
        d = folder / f"d{i % subdirs:03d}" if subdirs else folder
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"img{first_seed + i:05d}.png"
        p.write_bytes(png_bytes(width, height, seed=first_seed + i))
        paths.append(p)
    return paths


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def write_config(workdir: Path, base_url: str, folder: Path, *, name: str = "config.toml",
                 api: dict[str, Any] | None = None, **daemon: Any) -> Path:
    """A TOML config: one folder (default prompts), state_dir inside ``workdir``;
    ``api`` adds `[api]` keys (e.g. a timeout), ``daemon`` sets `[daemon]` keys."""
    d = {"state_dir": str(workdir / "state"), "log_level": "info", **daemon}
    a = {"base_url": base_url, "api_version": "v1beta", **(api or {})}
    lines = ["[api]", *(f"{k} = {_toml_value(v)}" for k, v in a.items()), "", "[daemon]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in d.items()]
    lines += ["", "[[folders]]", f"path = {_toml_value(folder)}", ""]
    path = workdir / name
    path.write_text("\n".join(lines))
    return path


def run_cli(config: Path, *args: str, log: Path | None = None,
            timeout: float = 1800, tree: Tree = THIS) -> tuple[int, float]:
    """Run ``mediasync -c CONFIG ARGS`` to completion; (exit code, wall seconds from spawn)."""
    cmd = [*mediasync_cmd(tree), "-c", str(config), *args]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                              env=bench_env(tree), timeout=timeout, check=False)
        return proc.returncode, time.perf_counter() - t0
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


def count_sidecars(folder: Path, suffix: str = ".caption.md") -> int:
    return sum(1 for _ in folder.rglob(f"*{suffix}"))


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM … in KiB from /proc/<pid>/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Vm") or line.startswith("Rss"):
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                out[key] = int(parts[0])
    return out


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_cpu_quiet(pid: int, *, quiet_for: float = 2.0, max_share: float = 0.05,
                   timeout: float = 300, step: float = 0.1) -> float:
    """Wait until a process used under ``max_share`` of one CPU over the last
    ``quiet_for`` seconds (a daemon pacing list pages at 1/s never reaches zero);
    returns seconds waited."""
    hz = os.sysconf("SC_CLK_TCK")
    t0 = time.monotonic()
    window: list[tuple[float, int]] = [(t0, cpu_ticks(pid))]
    while time.monotonic() - t0 < timeout:
        time.sleep(step)
        now = time.monotonic()
        window.append((now, cpu_ticks(pid)))
        while len(window) > 2 and now - window[1][0] >= quiet_for:
            window.pop(0)
        span = now - window[0][0]
        if span >= quiet_for and (window[-1][1] - window[0][1]) / hz <= max_share * span:
            return now - t0
    raise SystemExit(f"process {pid} stayed busy for {timeout:.0f}s")


def wait_for_log(path: Path, pattern: str, *, timeout: float = 120, offset: int = 0) -> str:
    """The first log line at or after ``offset`` matching ``pattern`` (bounded wait)."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = path.read_bytes()[offset:].decode(errors="replace")
        except FileNotFoundError:
            text = ""
        for line in text.splitlines():
            if rx.search(line):
                return line
        time.sleep(0.05)
    raise SystemExit(f"no log line matching {pattern!r} in {path} after {timeout:.0f}s")


def table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def which(name: str) -> str | None:
    return shutil.which(name)


def start_daemon(config: Path, log: Path, *, env: dict[str, str] | None = None,
                 tree: Tree = THIS) -> subprocess.Popen:
    """``mediasync -c CONFIG run`` in the background, stdout and stderr to ``log``
    (truncated); ``env`` replaces bench_env(). The child keeps the log open."""
    with open(log, "wb") as out:
        return subprocess.Popen([*mediasync_cmd(tree), "-c", str(config), "run"],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                env=env if env is not None else bench_env(tree))


def stop_daemon(proc: subprocess.Popen) -> None:
    """SIGTERM as systemctl stop would; kill it if it does not exit in time."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def sync_once(work: Path, base_url: str, folder: Path, count: int, **daemon: Any) -> None:
    """The unmeasured setup: sync ``count`` files fast (rate and slots raised); ``daemon``
    adds or overrides `[daemon]` keys (e.g. a scaled `renew_before`)."""
    setup = write_config(work, base_url, folder, name="setup.toml", **{
        "settle": "0s", "requests_per_minute": 1_000_000, "max_uploads": 8,
        "max_generations": 16, "log_level": "warning", **daemon})
    code, seconds = run_cli(setup, "sync", log=work / "setup.log", timeout=1800)
    done = count_sidecars(folder)
    print(f"setup sync: exit {code}, {seconds:.1f}s, {done} sidecars", flush=True)
    if code != 0 or done != count:
        raise SystemExit(f"setup failed; see {work / 'setup.log'}")



@dataclass
class DaemonMemory:
    """What ``daemon_memory`` saw: seconds since spawn and RSS figures in KiB."""

    ready_s: float  # the "watching … folder(s)" line: listing and walk done
    idle_s: float  # then under 5% of a CPU for 2 s
    rss_idle: int
    hwm_idle: int
    rescan_s: float  # the first periodic rescan started
    rescan_idle_s: float
    rescan_cpu_s: float  # CPU seconds from the rescan's start to idle again
    rss_rescan: int
    hwm_rescan: int  # the peak over the whole run
    line: str


def daemon_memory(config: Path, log: Path, rescan_every: float, *, tree: Tree = THIS,
                  timeout: float = 300) -> DaemonMemory:
    """Start ``mediasync run`` on an already-synced library and read its memory after
    the start-up scan and after its first periodic rescan (``rescan_every`` seconds
    after the "watching" line, when the scheduler starts); stop it. Every wait is
    bounded by ``timeout``."""
    t0 = time.monotonic()
    daemon = start_daemon(config, log, tree=tree)
    try:
        line = wait_for_log(log, r"watching \d+ folder", timeout=timeout)
        t_ready = time.monotonic()
        wait_cpu_quiet(daemon.pid, timeout=timeout)
        t_idle = time.monotonic()
        first = proc_status(daemon.pid)
        # The scheduler starts right after that log line; its first rescan is due
        # rescan_every later.
        time.sleep(max(0.0, t_ready + rescan_every - 0.5 - time.monotonic()))
        base = cpu_ticks(daemon.pid)
        time.sleep(1.0)
        t_rescan = time.monotonic()
        wait_cpu_quiet(daemon.pid, timeout=timeout)
        second = proc_status(daemon.pid)
        cpu = (cpu_ticks(daemon.pid) - base) / os.sysconf("SC_CLK_TCK")
        return DaemonMemory(t_ready - t0, t_idle - t0, first["VmRSS"], first["VmHWM"],
                            t_rescan - t0, time.monotonic() - t0, cpu, second["VmRSS"],
                            second["VmHWM"], line.strip())
    finally:
        stop_daemon(daemon)


def status_json(config: Path) -> dict[str, Any]:
    """``mediasync -c CONFIG status --json``, parsed."""
    out = subprocess.run([*mediasync_cmd(), "-c", str(config), "status", "--json"],
                         capture_output=True, text=True, env=bench_env(), check=False)
    return json.loads(out.stdout)


def cell(v: object) -> str:
    """A table cell: a dict of counts as "a 1, b 2"."""
    if isinstance(v, dict):
        return ", ".join(f"{k} {n}" for k, n in v.items())
    return str(v)
