"""The commented starting config that `mediasync init` writes, and its presets.

Rendered from the same defaults the parser lays under a config
(:mod:`mediasync.config.defaults`); the result parses back with ``parse_config``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomli_w

from .batch import DEFAULT_BATCH
from .defaults import DEFAULT_API, DEFAULT_DAEMON, DEFAULT_PROMPTS


def _kv(key: str, value: Any) -> str:
    # tomli-w does the quoting/escaping (unicode paths, quotes in prompts);
    # short string arrays stay on one line, where tomli-w would spread them.
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = ", ".join(tomli_w.dumps({"v": v})[4:-1] for v in value)
        return f"{key} = [{items}]\n"
    return tomli_w.dumps({key: value})


# The cap `init` writes (US dollars a day): about 1,000 captions with 2.5 Flash's
# default thinking (docs/benchmarks.md, part 4b), many more without.
INIT_DAILY_COST = 2.0

# `mediasync init --preset`: prompts for photo libraries and for players.
PRESETS = ("default", "photos", "video")
_PRESET_PROMPTS: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "photos": (
        ("Caption and keywords in photo.jpg.xmp, where digiKam, darktable and Immich look "
         "(naming = \"stem\" writes photo.xmp, Lightroom-style). An existing sidecar keeps "
         "everything else; a caption you edit there is kept.",
         {"kinds": ["image"], "format": "xmp",
          "prompt": "Caption this photo in one or two sentences and give a few keywords.",
          "alt_text": False}),
        ("Transcripts of audio as before.", dict(DEFAULT_PROMPTS[2])),
    ),
    "video": (
        ("Subtitles players find by name: clip.en.srt and clip.en.vtt. One file per "
         "language; another language is a translation.",
         {"kinds": ["video", "audio"], "format": "subtitles",
          "prompt": "Transcribe the speech in this file.", "subtitles": ["srt", "vtt"],
          "language": ["en"], "max_cue": "7s"}),
        ("A short description of each video, as before.", dict(DEFAULT_PROMPTS[1])),
    ),
}


def render_init_config(folders: Sequence[Path], *, state_dir: Path | None = None,
                       preset: str = "default") -> str:
    """A commented starting config for `mediasync init`; parses back with parse_config."""
    if not folders:
        raise ValueError("render_init_config needs at least one folder")
    out: list[str] = [
        "# mediasync configuration, written by `mediasync init`.\n",
        "# Durations: 500ms, 2s, 10m, 6h, 1h30m. Check it with `mediasync check`.\n",
        "# The API key does not belong here: set api.key_file, or GEMINI_API_KEY,\n",
        "# or a systemd credential named gemini-api-key.\n",
        "\n[api]\n",
        "# Model used by prompts that do not name their own: a pinned name (an alias such\n",
        "# as gemini-flash-latest changes model and price by itself). Models retire:\n",
        "# `mediasync check` says whether the service still has it and lists those it has.\n",
        _kv("model", DEFAULT_API["model"]),
        "# service_tier = \"flex\"  # half price, answers in minutes; fine for a daemon\n",
        "# v1beta or v1.\n",
        _kv("api_version", DEFAULT_API["api_version"]),
        "# key_file = \"/run/credentials/mediasync.service/gemini-api-key\"\n",
        "\n[daemon]\n",
        "# Database and logs.\n",
        _kv("state_dir", str(state_dir) if state_dir is not None else DEFAULT_DAEMON["state_dir"]),
        "# A file must stop changing for this long before it is uploaded.\n",
        _kv("settle", DEFAULT_DAEMON["settle"]),
        "# Parallel uploads and generations; requests per minute to the API.\n",
        _kv("max_uploads", DEFAULT_DAEMON["max_uploads"]),
        _kv("max_generations", DEFAULT_DAEMON["max_generations"]),
        _kv("requests_per_minute", DEFAULT_DAEMON["requests_per_minute"]),
        "# \"always\": renew every remote copy before its 48 h expiry. \"on_use\": let a\n",
        "# copy lapse once its sidecars are written and upload it again when a prompt\n",
        "# needs it (no renewal traffic for an idle library; a folder may set its own).\n",
        _kv("keep_alive", DEFAULT_DAEMON["keep_alive"]),
        "# A status page, /metrics and /healthz on this address (off unless set);\n",
        "# an address beyond loopback needs http_token (README: Status page).\n",
        "# http = \"127.0.0.1:8650\"\n",
        "# The share of the project's 20 GiB file store (or a size: \"18GB\") mediasync\n",
        "# keeps its copies in; beyond it a copy lapses once its sidecars are written\n",
        "# (newest files are kept first; keep_first = \"oldest\" or \"smallest\" to change).\n",
        _kv("storage_budget", DEFAULT_DAEMON["storage_budget"]),
        "\n[limits]\n",
        "# A spending cap for an unattended daemon: once today's estimated cost (tokens\n",
        "# at [prices], Pacific day) reaches it, generation waits for the next day and\n",
        "# `mediasync status` says so. Raise or remove it (a free-tier key is not billed,\n",
        "# and its day quota stops it well before this).\n",
        _kv("max_daily_cost", INIT_DAILY_COST),
        "# tier = \"free\"  # or \"paid\": pin the published limits instead of learning them\n",
        "\n# Notifications (Apprise URLs: ntfy, e-mail, …) when a file fails for good, the\n",
        "# key is refused, a quota or the cap is used, a folder stays away; test them with\n",
        "# `mediasync check --notify`.\n",
        "# [notify]\n",
        "# urls = [\"ntfy://my-mediasync-topic\", \"mailto://me:app-password@gmail.com\"]\n",
        "\n[batch]\n",
        "# An existing library is a backlog: \"auto\" sends 50 or more pending outputs as\n",
        "# one Batch API job, at half the price and outside the day quota, answered\n",
        "# within a day (a lone new file stays interactive); \"always\" batches every one.\n",
        _kv("mode", DEFAULT_BATCH["mode"]),
    ]
    for folder in folders:
        out += [
            "\n# A folder to mirror. Sidecars are written next to each file:\n",
            "# photo.jpg -> photo.jpg.caption.md, memo.mp3 -> memo.mp3.transcript.txt\n",
            "[[folders]]\n",
            _kv("path", str(folder)),
            _kv("recursive", True),
            "# Set polling = true for network shares (NFS, SMB), where inotify sees nothing.\n",
            _kv("polling", False),
            "# Globs on the path relative to the folder or on the file name.\n",
            _kv("include", []),
            _kv("exclude", []),
            "# \"auto\": video over 100 MB (or 2 GB, the service's limit) and audio over 25 MB\n",
            "# are uploaded as a proxy (720p, 16 kHz mono sound); \"original\" or \"proxy\".\n",
            _kv("upload", "auto"),
            "# pinned = true  # keep this folder's copies alive first (storage_budget)\n",
            "# Mirror symbolic links to media files inside the folder (never ones out of it).\n",
            _kv("follow_symlinks", False),
        ]
        if preset in _PRESET_PROMPTS:
            for note, p in _PRESET_PROMPTS[preset]:
                out += [
                    "\n", *(f"  # {line}\n" for line in textwrap.wrap(note, 86)),
                    "  [[folders.prompts]]\n",
                    *("  " + _kv(k, v) for k, v in p.items()),
                ]
            continue
        for p in DEFAULT_PROMPTS:
            out += [
                f"\n  # Ask this about each {' and '.join(p['kinds'])} file;"
                f" the answer goes to <file>{p['sidecar']}.\n",
                "  [[folders.prompts]]\n",
                *("  " + _kv(k, v) for k, v in p.items()),
            ]
            if p["kinds"] == ["image"]:
                out.append("  # thinking = \"off\"  # a caption rarely needs thinking (thoughts "
                           "are billed as output)\n"
                           "  # media_resolution = \"low\"  # a Gemini 3 image: 280 tokens, "
                           "not 1,120\n")
    return "".join(out)
