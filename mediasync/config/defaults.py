"""What an unset key of the config means: the defaults of [api], [daemon], a folder and
its prompts. Shared by the parser (:mod:`mediasync.config`) and the starting config
that `mediasync init` writes (:mod:`mediasync.config.template`), so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

DEFAULT_API = {
    "base_url": "https://generativelanguage.googleapis.com",
    "api_version": "v1beta",
    # Google's named replacement for gemini-2.5-flash, at its price (docs/service.md,
    # "The default model"). Pinned, not an alias such as gemini-flash-latest.
    "model": "gemini-3.5-flash-lite",
    "timeout": "60s",
    "flex_fallback": False,
    "flex_fallback_after": 3,
    "flex_timeout": "20m",
}
DEFAULT_DAEMON = {
    "state_dir": "~/.local/state/mediasync",
    "settle": "2s",
    "rescan_every": "10m",
    "refresh_every": "6h",
    "renew_before": "6h",
    "keep_alive": "always",
    # The share of the project's store (20 GiB, or the size the service names when
    # full) this instance keeps copies in: the rest is room for a renewal's second
    # copy and for other uploads on the key. A size ("18GB") works too.
    "storage_budget": "90%",
    # Which copies the budget keeps alive first, after files with outputs to make
    # and pinned folders: "newest", "oldest" or "smallest" (file modification time, size).
    "keep_first": "newest",
    "max_uploads": 2,
    "max_generations": 8,
    "requests_per_minute": 600,
    "log_level": "info",
    # The status page, /metrics and /healthz (issue 19): off unless an address is set.
    "http": None,
    "http_token": None,
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
        # A transcript grows with the audio: one cut at the output limit is asked for
        # again in time ranges and joined (a 3-hour podcast gets its whole transcript).
        "ranges": "auto",
    },
)
