"""What an unset key of the config means: the defaults of [api], [daemon], a folder and
its prompts. Shared by the parser (:mod:`mediasync.config`) and the starting config
that `mediasync init` writes (:mod:`mediasync.config.template`), so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

DEFAULT_API = {
    "base_url": "https://generativelanguage.googleapis.com",
    "api_version": "v1beta",
    "model": "gemini-2.5-flash",
    "timeout": "60s",
}
DEFAULT_DAEMON = {
    "state_dir": "~/.local/state/mediasync",
    "settle": "2s",
    "rescan_every": "10m",
    "refresh_every": "6h",
    "renew_before": "6h",
    "keep_alive": "always",
    "max_uploads": 2,
    "max_generations": 8,
    "requests_per_minute": 600,
    "log_level": "info",
}
DEFAULT_FOLDER = {"recursive": True, "polling": False, "include": [], "exclude": [],
                  "follow_symlinks": False}
# Used for a folder that names no prompts.
DEFAULT_PROMPTS: tuple[dict[str, Any], ...] = (
    {
        "kinds": ["image"],
        "prompt": "Caption this image in one sentence.",
        "sidecar": ".caption.md",
    },
    {
        "kinds": ["video"],
        "prompt": "Describe this video in a few sentences.",
        "sidecar": ".caption.md",
    },
    {
        "kinds": ["audio"],
        "prompt": "Transcribe this audio. Use proper punctuation and paragraph breaks.",
        "sidecar": ".transcript.txt",
    },
)
