"""The user's tools beside the daemon: init, check, files, ask, demo.

Each handler takes the parsed arguments and returns an exit code (see cli.py).
A user's mistake ends as one line on stderr: configuration faults raise
ConfigError (cli.py prints it, exit 2); API faults are turned into a line here
(exit 3 when the key was refused or the service could not be reached).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import hashlib
import logging
import os
import secrets
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from mediasync.config import (
    KEY_ENV_VARS,
    KEY_FILE_NAME,
    PRESETS,
    Config,
    ConfigError,
    default_config_path,
    load_config,
    load_config_or_default,
    parse_config,
    render_init_config,
    resolve_api_key,
)
from mediasync.gemini import ApiError, File, GeminiClient, RetryPolicy
from mediasync.media import MAX_PROJECT_BYTES, media_type

log = logging.getLogger("mediasync")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_API = 0, 1, 2, 3

# A folder holding this share of the inotify watch limit earns a warning: other
# programs of the same user (editors, file managers, Syncthing) need watches too.
INOTIFY_WARN_SHARE = 0.5
INOTIFY_LIMIT_FILE = Path("/proc/sys/fs/inotify/max_user_watches")


def _err(message: str) -> None:
    print(f"mediasync: {message}", file=sys.stderr)


def _api_exit(e: ApiError) -> int:
    """Exit code for an API fault: 3 for a refused key or no service, else 1."""
    if e.key_invalid or e.code == 0 or e.code in (401, 403):
        return EXIT_API
    return EXIT_FAILED


def _describe_api_error(e: ApiError) -> str:
    if e.key_invalid:
        return f"the API key was refused ({e})"
    if e.code == 0:
        return f"the service could not be reached ({e.message or e.status})"
    return str(e)


def _client(config: Config, *, quick: bool = False) -> GeminiClient:
    from mediasync.daemon import make_client

    client = make_client(config, os.environ)
    # Someone is waiting at a terminal: fewer, shorter retries than the daemon's.
    client.retry = RetryPolicy(max_attempts=2 if quick else 3, max_delay=2.0 if quick else 4.0)
    return client


def _state_db(config: Config) -> Path:
    from mediasync.daemon import STATE_FILE, state_dir

    return state_dir(config, os.environ) / STATE_FILE


def _human(n: float | None) -> str:
    from mediasync.plan import human_bytes

    return "-" if n is None else human_bytes(n)


def _stamp(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when else "-"


# --- init ----------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path or args.config or default_config_path(os.environ)).expanduser()
    if os.path.lexists(path) and not args.force:
        _err(f"{path} already exists; not overwriting it (pass --force to replace it)")
        return EXIT_USAGE
    # abspath, not resolve(): keep the name the user typed for symlinked mounts.
    folders = [Path(os.path.abspath(os.path.expanduser(f))) for f in args.folder]
    placeholder = not folders
    if placeholder:
        folders = [Path("~/Media/inbox")]
    state = Path(os.path.abspath(os.path.expanduser(args.state_dir))) if args.state_dir else None
    text = render_init_config(folders, state_dir=state, preset=args.preset)
    # Refuse a config that would not load (e.g. nested --folder values) before writing.
    parse_config(tomllib.loads(text), source=path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        _err(f"cannot write {path}: {e.strerror or e}")
        return EXIT_USAGE
    print(f"wrote {path}")
    cfg = "" if path == default_config_path(os.environ) else f" -c {path}"
    steps = []
    if placeholder:
        steps.append(f"edit folders[0].path in {path} (it says ~/Media/inbox), "
                     "or run init again with --folder PATH --force")
    missing = [str(f) for f in folders if not placeholder and not f.is_dir()]
    if missing:
        steps.append(f"create {', '.join(missing)} (it does not exist yet)")
    steps += [
        "put your Gemini API key in place: export GEMINI_API_KEY=..., or write it to a "
        "file and set api.key_file (README: Quick start)",
        f"mediasync{cfg} check      # config, key and folders",
        f"mediasync{cfg} run        # or run it under systemd (README: Running under systemd)",
    ]
    print("next:")
    for i, step in enumerate(steps, 1):
        print(f"  {i}. {step}")
    return EXIT_OK


# --- check ---------------------------------------------------------------------


class _Report:
    def __init__(self) -> None:
        self.failed = False
        self.api_failed = False
        self.differed = False
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


def cmd_check(args: argparse.Namespace) -> int:
    r = _Report()
    path = args.config or default_config_path(os.environ)
    try:
        config = load_config(path)
    except ConfigError as e:
        r.fail(f"config {e}")
        return _verdict(r)
    r.ok(f"config {path}: {len(config.folders)} folder(s), model {config.api.model}")
    key_ok = _check_key(config, r)
    _check_state(config, r)
    _check_folders(config, r)
    live = getattr(args, "live", False)
    if not live:
        return _verdict(r)
    if not key_ok:
        return _verdict(r, live="the live round trip did not run")
    from mediasync import livecheck

    return _verdict(r, live=livecheck.run(config, os.environ, r))


def _verdict(r: _Report, *, live: str | None = None) -> int:
    """``live``: None without --live, else what the live round trip took or why it did not run."""
    if r.failed or r.api_failed:
        extra = f" ({live})" if live and not r.differed else ""
        print(f"verdict: not ready; fix the FAIL lines above{extra}")
        return EXIT_USAGE if r.failed else EXIT_API
    if r.differed:
        print(f"verdict: the live service differs from what mediasync expects ({live}); "
              "see the FAIL lines above")
        return EXIT_FAILED
    extra = f" ({r.warnings} warning(s) above)" if r.warnings else ""
    if live:
        extra += f"; the live service answered as mediasync expects ({live})"
    print(f"verdict: ready{extra}; start it with `mediasync run` or under systemd")
    return EXIT_OK


def _key_origin(config: Config, env: Mapping[str, str]) -> str:
    """Where resolve_api_key found the key (the same order), never the key."""
    if config.api.key_file is not None:
        return f"api.key_file {config.api.key_file}"
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds and os.path.lexists(Path(creds) / KEY_FILE_NAME):
        return f"$CREDENTIALS_DIRECTORY/{KEY_FILE_NAME}"
    for var in KEY_ENV_VARS:
        if env.get(var, "").strip():
            return f"${var}"
    return "?"


def _check_key(config: Config, r: _Report) -> bool:
    """True when a key was found and the service accepted it."""
    try:
        resolve_api_key(config.api, os.environ)
    except ConfigError as e:
        r.fail(f"api key: {e.message}")
        return False
    r.ok(f"api key found in {_key_origin(config, os.environ)}")

    async def probe() -> list[File]:
        async with _client(config, quick=True) as client:
            # Every page, not one: the listing also tells how full the 20 GB quota is.
            return await client.list_files(page_size=100)

    where = f"{config.api.base_url} ({config.api.api_version})"
    try:
        files = asyncio.run(probe())
    except ApiError as e:
        r.fail(f"api {where}: {_describe_api_error(e)}", api=_api_exit(e) == EXIT_API)
        return False
    from mediasync.plan import DISPLAY_PREFIX

    used = sum(f.size_bytes or 0 for f in files)
    ours = sum(1 for f in files if (f.display_name or "").startswith(DISPLAY_PREFIX))
    line = (f"api {where} accepted the key; {len(files)} remote file(s) ({ours} by mediasync), "
            f"{_human(used)} of {_human(MAX_PROJECT_BYTES)} used")
    if used >= 0.9 * MAX_PROJECT_BYTES:
        r.warn(line + "; nearly full: see `mediasync files purge`")
    else:
        r.ok(line)
    return True


def _check_state(config: Config, r: _Report) -> None:
    db = _state_db(config)
    directory = db.parent
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        r.fail(f"state directory {directory}: not writable by this user")
        return
    note = "state.db present" if db.exists() else "no state.db yet"
    running = _lock_holder(directory / "lock")
    if running:
        note += f"; the daemon is running (pid {running})"
    r.ok(f"state directory {directory}: {note}")


def _lock_holder(lock: Path) -> str | None:
    """The pid in the daemon's lock file if a process holds the lock, else None."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
    finally:
        os.close(fd)
    return None


def _check_folders(config: Config, r: _Report) -> None:
    from mediasync.sidecar import TEMP_PREFIX

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


# --- files ---------------------------------------------------------------------


def cmd_files(args: argparse.Namespace) -> int:
    _, config = load_config_or_default(args.config, os.environ)
    action = {
        "list": _files_list,
        "delete": _files_delete,
        "purge": _files_purge,
    }[args.files_command]

    async def go() -> int:
        async with _client(config) as client:
            return await action(client, args, config)

    try:
        return asyncio.run(go())
    except ApiError as e:
        _err(_describe_api_error(e))
        return _api_exit(e)


def _by_age(files: list[File]) -> list[File]:
    return sorted(files, key=lambda f: (f.create_time is None, f.create_time or 0, f.name))


async def _files_list(client: GeminiClient, args: argparse.Namespace, config: Config) -> int:
    from mediasync.plan import DISPLAY_PREFIX

    files = _by_age(await client.list_files())
    if not files:
        print("no remote files")
        return EXIT_OK
    rows = [("NAME", "SIZE", "STATE", "EXPIRES", "DISPLAY NAME")]
    rows += [(f.name, _human(f.size_bytes), f.state, _stamp(f.expiration_time),
              f.display_name or "") for f in files]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    used = sum(f.size_bytes or 0 for f in files)
    ours = sum(1 for f in files if (f.display_name or "").startswith(DISPLAY_PREFIX))
    print(f"{len(files)} file(s), {ours} by mediasync; {_human(used)} of "
          f"{_human(MAX_PROJECT_BYTES)} used")
    return EXIT_OK


def _remote_name(text: str) -> str:
    return text if text.startswith("files/") else f"files/{text}"


async def _files_delete(client: GeminiClient, args: argparse.Namespace, config: Config) -> int:
    name = _remote_name(args.name.strip())
    try:
        await client.delete_file(name)
    except ApiError as e:
        if e.file_gone:
            _err(f"{name}: no such file (or it has expired, or belongs to another project)")
            return EXIT_FAILED
        raise
    print(f"deleted {name}")
    return EXIT_OK


def _this_instance(config: Config) -> str | None:
    """The instance id of this config's state directory, None when it never ran."""
    from mediasync.store import Store, StoreError

    db = _state_db(config)
    if not db.exists():
        return None
    try:
        store = Store(db, readonly=True)
    except StoreError as e:
        log.debug("%s", e)
        return None
    try:
        return store.get_meta("instance_id")
    finally:
        store.close()


async def _files_purge(client: GeminiClient, args: argparse.Namespace, config: Config) -> int:
    from mediasync.plan import DISPLAY_PREFIX, owner_of

    files = _by_age(await client.list_files())
    instance = None if args.any_instance else _this_instance(config)

    def ours(display: str | None) -> bool:
        # This instance's copies and old-form names (no instance id); another
        # instance's (a second state directory on the same key) only on request.
        owner = owner_of(display)
        return owner is not None and (args.any_instance or owner[0] in (None, instance))

    doomed = [f for f in files if args.all or ours(f.display_name)]
    others = sum(1 for f in files if owner_of(f.display_name) and not ours(f.display_name))
    whose = "remote file(s) in the project" if args.all else "remote file(s) created by mediasync"
    total = _human(sum(f.size_bytes or 0 for f in doomed))
    if others and not args.all:
        print(f"leaving {others} file(s) of other mediasync instances on this key "
              "(--any-instance deletes those too)")
    if not doomed:
        print(f"nothing to delete: no {whose}")
        return EXIT_OK
    if not args.yes:
        for f in doomed:
            print(f"would delete {f.name}  {_human(f.size_bytes)}  {f.display_name or ''}")
        print(f"dry run: {len(doomed)} {whose}, {total}; pass --yes to delete them")
        return EXIT_OK
    failed = 0
    for f in doomed:
        try:
            await client.delete_file(f.name)
        except ApiError as e:
            if not e.file_gone:  # gone already (expired meanwhile) is what we wanted
                if e.key_invalid or e.code == 0:
                    raise
                _err(f"{f.name}: {e}")
                failed += 1
                continue
        print(f"deleted {f.name}  {_human(f.size_bytes)}  {f.display_name or ''}")
    print(f"deleted {len(doomed) - failed} of {len(doomed)} {whose}, {total}")
    # No need to touch the daemon's database: its refresh notices the vanished
    # copies and uploads those still needed again.
    if not args.all or any((f.display_name or "").startswith(DISPLAY_PREFIX) for f in doomed):
        print("a running mediasync uploads the files it still mirrors again on its next refresh")
    return EXIT_FAILED if failed else EXIT_OK


# --- ask -----------------------------------------------------------------------


def cmd_ask(args: argparse.Namespace) -> int:
    _, config = load_config_or_default(args.config, os.environ)
    path = Path(os.path.abspath(os.path.expanduser(args.path)))
    mt = media_type(path)
    if mt is None:
        _err(f"{path}: not a supported media file (see README: Configuration)")
        return EXIT_USAGE
    if not path.is_file():
        _err(f"{path}: no such file")
        return EXIT_USAGE
    if not args.question.strip():
        _err("the question is empty")
        return EXIT_USAGE
    model = args.model or config.api.model
    try:
        text, blocked = asyncio.run(_ask(config, path, mt.mime, model, args.question))
    except ApiError as e:
        _err(_describe_api_error(e))
        return _api_exit(e)
    except OSError as e:
        _err(f"{path}: {e.strerror or e}")
        return EXIT_FAILED
    if blocked:
        _err(f"the answer was blocked: {blocked}")
        return EXIT_FAILED
    print(text)
    return EXIT_OK


def _mirrored_copy(config: Config, path: Path) -> tuple[str, str] | None:
    """(uri, mime) of the daemon's live remote copy of this file's current bytes."""
    from mediasync.plan import usable
    from mediasync.store import Store, StoreError

    db = _state_db(config)
    if not db.exists():
        return None
    try:
        store = Store(db, readonly=True)  # works beside a running daemon (WAL)
    except StoreError as e:
        log.debug("%s", e)
        return None
    try:
        st = path.stat()
        for key in dict.fromkeys((str(path), os.path.realpath(path))):
            row = store.get_path(key)
            if row is None or row.gone_at is not None or row.sha256 is None:
                continue
            # The recorded hash is only the file's if the file has not changed since.
            if (row.size, row.mtime_ns, row.inode) != (st.st_size, st.st_mtime_ns, st.st_ino):
                continue
            c = store.get_content(row.sha256)
            if c and c.uri and usable(c, time.time()):
                return c.uri, c.mime
    except Exception as e:  # a busy or odd database: fall back to an upload
        log.debug("cannot read %s: %s", db, e)
    finally:
        store.close()
    return None


async def _ask(config: Config, path: Path, mime: str, model: str,
               question: str) -> tuple[str | None, str | None]:
    """(answer, None), or (None, block reason)."""
    from mediasync import plan

    mirrored = _mirrored_copy(config, path)
    async with _client(config) as client:
        gen = None
        if mirrored is not None:
            uri, mirrored_mime = mirrored
            log.info("asking through the mirrored copy (no upload)")
            try:
                gen = await client.generate(model, file_uri=uri, mime_type=mirrored_mime,
                                            prompt=question)
            except ApiError as e:
                if not e.file_gone:
                    raise
                log.info("the mirrored copy is gone; uploading a temporary one")
        if gen is None:
            with path.open("rb") as fh:
                sha = hashlib.file_digest(fh, "sha256").hexdigest()
            log.info("uploading a temporary copy of %s", path.name)
            # Named like the daemon's uploads so a copy left by a crash is ours to
            # clean: the daemon's refresh deletes it, and so does `files purge`.
            file = await client.upload(path, mime, plan.display_name(sha, path.name))
            try:
                file = await client.wait_processed(file.name)
                if file.state == "FAILED":
                    raise ApiError(400, "FAILED_PRECONDITION", "the service could not process "
                                   f"the file: {file.error_message or 'FAILED'}")
                gen = await client.generate(model, file_uri=file.uri or "", mime_type=mime,
                                            prompt=question)
            finally:
                try:
                    await client.delete_file(file.name)
                except ApiError as e:
                    if not e.file_gone:
                        log.warning("could not delete the temporary copy %s (%s); "
                                    "`mediasync files delete %s` will", file.name, e, file.name)
    if gen.blocked:
        return None, gen.block_reason or gen.finish_reason or "no reason given"
    if gen.text is None:
        return None, f"no text in the answer (finish reason {gen.finish_reason or 'none'})"
    return gen.text, None


# --- demo ----------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from mediasync import demo

    return demo.run(keep=args.keep, timeout=args.timeout)


# --- registration --------------------------------------------------------------

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "init": cmd_init,
    "check": cmd_check,
    "files": cmd_files,
    "ask": cmd_ask,
    "demo": cmd_demo,
}


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the tool subcommands on the CLI's parser."""
    p = sub.add_parser("init", help="write a commented starting config (asks nothing)")
    p.add_argument("path", nargs="?", type=Path, metavar="CONFIG",
                   help="where to write it (default: -c, $MEDIASYNC_CONFIG, then "
                   "~/.config/mediasync/config.toml)")
    p.add_argument("--folder", action="append", default=[], metavar="PATH",
                   help="a folder to mirror; repeat for several (default: ~/Media/inbox)")
    p.add_argument("--state-dir", metavar="PATH",
                   help="daemon.state_dir (default: ~/.local/state/mediasync)")
    p.add_argument("--preset", choices=PRESETS, default="default",
                   help="prompts to start with: default (text captions and transcripts), "
                   "photos (XMP sidecars with caption and keywords), video (SRT/VTT subtitles)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")

    p = sub.add_parser("check", help="check the config, the API key and the folders; "
                       "exit 0 if ready")
    p.add_argument("--live", action="store_true",
                   help="then one round trip with the service: upload a tiny PNG, one question "
                   "(~300 tokens), delete it; exit 1 if the service answers unlike expected")

    p = sub.add_parser("files", help="the remote side: list, delete, purge files in the project")
    files = p.add_subparsers(dest="files_command", metavar="ACTION")
    files.required = True
    files.add_parser("list", help="every remote file: name, size, state, expiry, display name")
    d = files.add_parser("delete", help="delete one remote file")
    d.add_argument("name", metavar="NAME", help="files/abc123 or abc123")
    pg = files.add_parser("purge", help="delete the remote files mediasync created "
                          "(a dry run unless --yes)")
    pg.add_argument("--all", action="store_true",
                    help="every file in the project, not only mediasync's")
    pg.add_argument("--yes", action="store_true", help="really delete (default: only list)")
    pg.add_argument("--any-instance", action="store_true",
                    help="also the files of other mediasync instances (other state "
                    "directories) on this key")

    p = sub.add_parser("ask", help="ask one question about a file (uses its mirrored copy "
                       "when there is one, else uploads a temporary copy)")
    p.add_argument("path", metavar="PATH", help="a media file")
    p.add_argument("question", metavar="QUESTION", help="the prompt, e.g. \"Who is in it?\"")
    p.add_argument("--model", help="model to ask (default: api.model)")

    p = sub.add_parser("demo", help="see it work: the emulator, sample media and the real "
                       "daemon in a temporary folder (no API key needed)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder afterwards")
    p.add_argument("--timeout", type=float, default=60.0, help=argparse.SUPPRESS)

