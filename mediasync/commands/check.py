"""`mediasync check`: the config, the API key, the state directory and the folders,
one line each, then a verdict; with --live also a round trip (``check_live.py``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
from pathlib import Path

from mediasync.app.instance import lock_holder
from mediasync.commands.common import (
    EXIT_API,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    api_fatal,
    describe_api_error,
    human,
    remote_usage,
    state_db,
    tool_client,
    tool_logging,
)
from mediasync.config import (
    Config,
    ConfigError,
    default_config_path,
    find_api_key,
    load_config,
)
from mediasync.gemini import ApiError, File, ModelInfo
from mediasync.media.formats import MAX_PROJECT_BYTES

HELP = "check the config, the API key and the folders; exit 0 if ready"

# A folder holding this share of the inotify watch limit earns a warning: other
# programs of the same user (editors, file managers, Syncthing) need watches too.
INOTIFY_WARN_SHARE = 0.5
INOTIFY_LIMIT_FILE = Path("/proc/sys/fs/inotify/max_user_watches")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--live", action="store_true",
                   help="then one round trip with the service: upload a tiny PNG, one question "
                   "(~300 tokens), delete it; exit 1 if the service answers unlike expected")
    p.add_argument("--notify", action="store_true",
                   help="send a test notification to each of [notify] urls; exit 1 if one "
                   "cannot be sent")


class _Report:
    def __init__(self) -> None:
        self.failed = False
        self.api_failed = False
        self.differed = False
        self.unsent = False  # check --notify: a test notification did not get through
        self.warnings = 0

    def ok(self, what: str) -> None:
        print(f"ok   {what}", flush=True)

    def fail(self, what: str, *, api: bool = False) -> None:
        print(f"FAIL {what}", flush=True)
        if api:
            self.api_failed = True
        else:
            self.failed = True

    def differ(self, what: str) -> None:
        """The live service answered unlike mediasync expects (check --live)."""
        print(f"FAIL {what}", flush=True)
        self.differed = True

    def warn(self, what: str) -> None:
        print(f"warn {what}", flush=True)
        self.warnings += 1


def main(args: argparse.Namespace) -> int:
    tool_logging(args)
    r = _Report()
    path = args.config or default_config_path(os.environ)
    try:
        config = load_config(path)
    except ConfigError as e:
        r.fail(f"config {e}")
        return _verdict(r)
    r.ok(f"config {path}: {len(config.folders)} folder(s), model {config.api.model}")
    key_ok = _check_key(config, r)
    if key_ok:
        _check_models(config, r)
    _check_knobs(config, r)
    _check_state(config, r)
    _check_folders(config, r)
    _check_http(config, r)
    if getattr(args, "notify", False):
        _check_notify(config, r)
    live = getattr(args, "live", False)
    if not live:
        return _verdict(r)
    if not key_ok:
        return _verdict(r, live="the live round trip did not run")
    from mediasync.commands import check_live

    return _verdict(r, live=check_live.run(config, os.environ, r))


def _verdict(r: _Report, *, live: str | None = None) -> int:
    """``live``: None without --live, else what the live round trip took or why it did not run."""
    if r.failed or r.api_failed:
        extra = f" ({live})" if live and not r.differed else ""
        print(f"verdict: not ready; fix the FAIL lines above{extra}")
        return EXIT_USAGE if r.failed else EXIT_API
    if r.unsent and not r.differed:
        print("verdict: a test notification could not be sent; see the FAIL lines above")
        return EXIT_FAILED
    if r.differed:
        print(f"verdict: the live service differs from what mediasync expects ({live}); "
              "see the FAIL lines above")
        return EXIT_FAILED
    extra = f" ({r.warnings} warning(s) above)" if r.warnings else ""
    if live:
        extra += f"; the live service answered as mediasync expects ({live})"
    print(f"verdict: ready{extra}; start it with `mediasync run` or under systemd")
    return EXIT_OK


def _check_key(config: Config, r: _Report) -> bool:
    """True when a key was found and the service accepted it."""
    try:
        _, origin = find_api_key(config.api, os.environ)
    except ConfigError as e:
        r.fail(f"api key: {e.message}")
        return False
    r.ok(f"api key found in {origin}")

    async def probe() -> list[File]:
        async with tool_client(config, quick=True) as client:
            # Every page, not one: the listing also tells how full the 20 GB quota is.
            return await client.list_files(page_size=100)

    where = f"{config.api.base_url} ({config.api.api_version})"
    try:
        files = asyncio.run(probe())
    except ApiError as e:
        r.fail(f"api {where}: {describe_api_error(e)}", api=api_fatal(e))
        return False
    used, ours = remote_usage(files)
    line = (f"api {where} accepted the key; {len(files)} remote file(s) ({ours} by mediasync), "
            f"{human(used)} of {human(MAX_PROJECT_BYTES)} used")
    if used >= 0.9 * MAX_PROJECT_BYTES:
        r.warn(line + "; nearly full: see `mediasync files purge`")
    else:
        r.ok(line)
    return True


def _check_http(config: Config, r: _Report) -> None:
    """[daemon] http: beyond loopback only with a token (found as the daemon would)."""
    from mediasync.app.observe import check

    listen = config.daemon.http
    if listen is None:
        return
    try:
        token = check(config, os.environ)
    except ConfigError as e:
        r.fail(f"http {e}")
        return
    guard = "token required but for /healthz" if token else "no token (loopback only)"
    r.ok(f"http: status page, /metrics and /healthz on {listen}; {guard}")


def _check_notify(config: Config, r: _Report) -> None:
    """check --notify: one test message to each URL, each its own line."""
    from mediasync.app.notify import Sender
    from mediasync.config import describe_url

    urls = config.notify.urls
    if not urls:
        r.unsent = True
        print("FAIL notify: no [notify] urls in the config", flush=True)
        return
    host = os.uname().nodename
    for i, url in enumerate(urls):
        sender = Sender([url], config.notify.timeout)
        try:
            ok = asyncio.run(sender.send("mediasync: test notification",
                                         f"mediasync on {host} can reach you here "
                                         "(mediasync check --notify)."))
        finally:
            sender.close()
        where = f"notify.urls[{i}] {describe_url(url)}"
        if ok:
            r.ok(f"{where}: test notification sent")
        else:
            r.unsent = True
            print(f"FAIL {where}: the test notification could not be sent", flush=True)


def _check_models(config: Config, r: _Report) -> None:
    """Every model the config names, by models.get: served and answering generateContent.
    A missing one lists those that are; a transient failure is said as such."""
    names = config.models()

    async def probe() -> tuple[dict[str, ModelInfo | ApiError], list[ModelInfo] | ApiError]:
        got: dict[str, ModelInfo | ApiError] = {}
        listing: list[ModelInfo] | ApiError = []
        async with tool_client(config, quick=True) as client:
            for model in names:
                try:
                    got[model] = await client.get_model(model)
                except ApiError as e:
                    got[model] = e
            if any(isinstance(v, ApiError) and v.model_missing for v in got.values()):
                try:
                    listing = await client.list_models()
                except ApiError as e:
                    listing = e
        return got, listing

    got, listing = asyncio.run(probe())
    for model, where in names.items():
        answer = got[model]
        if isinstance(answer, ModelInfo):
            if answer.generates:
                shown = f" ({answer.display_name})" if answer.display_name else ""
                r.ok(f"model {model}{shown} ({where}): listed, supports generateContent")
                batching = {config.batch.mode, *(f.batch.mode for f in config.folders if f.batch)}
                if batching - {"off"} and answer.methods and (
                        "batchGenerateContent" not in answer.methods):
                    r.warn(f"model {model} ({where}) does not list batchGenerateContent: "
                           "[batch] jobs for it will be refused and its outputs generated "
                           "interactively")
            else:
                r.fail(f"{where}: {model!r} exists but does not support generateContent (it "
                       f"supports {', '.join(answer.methods) or 'nothing listed'})")
        elif answer.model_missing:
            r.fail(f"{where}: model {model!r} is not available (retired or unknown: "
                   f"{answer.code} {answer.status}); {_available(listing)}")
        elif api_fatal(answer):
            r.fail(f"model {model} ({where}): {describe_api_error(answer)}", api=True)
        else:
            r.warn(f"model {model} ({where}): could not be looked up now ({answer}); a "
                   "transient failure, not a sign that it is missing")


def _available(listing: list[ModelInfo] | ApiError) -> str:
    if isinstance(listing, ApiError):
        return f"the list of models could not be read ({listing})"
    names = sorted(m.id for m in listing if m.generates and m.id)
    if not names:
        return "the service lists no model that supports generateContent"
    return "models that support generateContent: " + ", ".join(names)


def _check_knobs(config: Config, r: _Report) -> None:
    """Knobs a model cannot honour as written (thinking = "off" on a model that cannot
    stop thinking…): said once each, with what is sent instead."""
    said: set[str] = set()
    for i, folder in enumerate(config.folders):
        for prompt in folder.prompts:
            model = prompt.effective_model(config.api.model)
            for note in config.knobs_for(folder.path / "x", prompt).request(model).notes:
                if note not in said:
                    said.add(note)
                    r.warn(f"folders[{i}]: {note}")


def _check_state(config: Config, r: _Report) -> None:
    db = state_db(config)
    directory = db.parent
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        r.fail(f"state directory {directory}: not writable by this user")
        return
    note = "state.db present" if db.exists() else "no state.db yet"
    running = lock_holder(directory)
    if running:
        note += f"; the daemon is running (pid {running})"
    r.ok(f"state directory {directory}: {note}")


def _check_folders(config: Config, r: _Report) -> None:
    from mediasync.local.sidecar import TEMP_PREFIX

    real: dict[str, Path] = {}
    to_watch = 0
    for i, folder in enumerate(config.folders):
        p = folder.path
        label = f"folders[{i}] {p}"
        if not p.exists():
            r.fail(f"{label}: does not exist")
            continue
        if not p.is_dir():
            r.fail(f"{label}: not a directory")
            continue
        if not os.access(p, os.R_OK | os.X_OK):
            r.fail(f"{label}: not readable by this user")
            continue
        # A real write, not os.access(): read-only mounts and systemd's
        # ProtectSystem= sandbox are only seen by trying. The name is one the
        # watcher ignores, so a running daemon does not notice it.
        probe = p / f"{TEMP_PREFIX}check-{secrets.token_hex(4)}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            r.fail(f"{label}: cannot write sidecars here ({e.strerror or e})")
            continue
        resolved = Path(os.path.realpath(p))
        nested = next((f"{k}" for k, v in real.items()
                       if resolved.is_relative_to(v) or v.is_relative_to(resolved)), None)
        if nested:
            r.fail(f"{label}: through symlinks it nests with {nested}; folders must not nest")
            continue
        real[label] = resolved
        mode = "polling" if folder.polling else "inotify"
        r.ok(f"{label}: readable and writable ({mode}{', recursive' if folder.recursive else ''})")
        if not folder.polling:
            to_watch += _count_dirs(p, folder.recursive, limit=_inotify_limit() or 10**7)
    _check_inotify(to_watch, r)


def _inotify_limit() -> int | None:
    try:
        return int(INOTIFY_LIMIT_FILE.read_text().strip())
    except (OSError, ValueError):
        return None


def _count_dirs(root: Path, recursive: bool, *, limit: int) -> int:
    """Directories inotify must watch (one watch each), counting up to ``limit``."""
    if not recursive:
        return 1
    n = 0
    for _dirpath, _dirnames, _files in os.walk(root):
        n += 1
        if n >= limit:
            break
    return n


def _check_inotify(dirs: int, r: _Report) -> None:
    if dirs == 0:
        return
    limit = _inotify_limit()
    if limit is None:
        r.warn(f"inotify: {dirs} folder(s) to watch; cannot read {INOTIFY_LIMIT_FILE}")
        return
    line = f"inotify: {dirs} folder(s) to watch, limit fs.inotify.max_user_watches = {limit}"
    if dirs >= INOTIFY_WARN_SHARE * limit:
        r.warn(line + "; raise it (README: Troubleshooting) or set polling = true")
    else:
        r.ok(line)


