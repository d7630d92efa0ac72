"""`mediasync init`: write a commented starting config and say what to do next."""

from __future__ import annotations

import argparse
import os
import secrets
import tomllib
from pathlib import Path

from mediasync.commands.common import EXIT_OK, EXIT_USAGE, err, tool_logging
from mediasync.config import PRESETS, default_config_path, parse_config, render_init_config

HELP = "write a commented starting config (asks nothing)"


def add_arguments(p: argparse.ArgumentParser) -> None:
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


def main(args: argparse.Namespace) -> int:
    tool_logging(args)
    path = Path(args.path or args.config or default_config_path(os.environ)).expanduser()
    if os.path.lexists(path) and not args.force:
        err(f"{path} already exists; not overwriting it (pass --force to replace it)")
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
        err(f"cannot write {path}: {e.strerror or e}")
        return EXIT_USAGE
    print(f"wrote {path}")
    _next_steps(path, folders, placeholder)
    return EXIT_OK


def _next_steps(path: Path, folders: list[Path], placeholder: bool) -> None:
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
