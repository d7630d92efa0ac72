"""``[batch]`` and a folder's ``[folders.batch]``: when outputs go by the Batch API.

``mode``: "off" (every output interactive), "auto" (a backlog of at least
``min_outputs`` pending outputs of one model and settings goes as one batch job; a
lone new file stays interactive), "always" (every output by batch). ``max_wait``:
how long a job may stay open before it is cancelled and its outputs go interactive.
A folder's sub-table overrides the keys it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .values import ConfigError, as_choice, as_duration, as_pos_int, as_table, check_keys

BATCH_MODES = ("off", "auto", "always")
DEFAULT_BATCH = {"mode": "off", "min_outputs": 50, "max_wait": "30h"}
BATCH_KEYS = tuple(DEFAULT_BATCH)
# A job pending or running 48 h ends EXPIRED with no results (files-api.md): waiting
# longer than that would only wait for nothing.
LONGEST_WAIT = 48 * 3600.0


@dataclass(frozen=True)
class BatchConfig:
    mode: str = "off"
    min_outputs: int = 50
    max_wait: float = 30 * 3600.0


def parse_batch(raw: Any, where: str, over: BatchConfig | None = None) -> BatchConfig:
    """The ``[batch]`` table (``where`` = "batch"), or a folder's over ``over``."""
    t: Mapping[str, Any] = as_table(raw, where)
    check_keys(t, BATCH_KEYS, where)
    base = over or BatchConfig()
    out = base
    if "mode" in t:
        out = replace(out, mode=as_choice(t["mode"], BATCH_MODES, f"{where}.mode"))
    if "min_outputs" in t:
        out = replace(out, min_outputs=as_pos_int(t["min_outputs"], f"{where}.min_outputs"))
    if "max_wait" in t:
        wait = as_duration(t["max_wait"], f"{where}.max_wait", positive=True)
        if wait > LONGEST_WAIT:
            raise ConfigError(f"{t['max_wait']!r} is longer than a batch job may run (48h: "
                              "it then ends EXPIRED)", key=f"{where}.max_wait")
        out = replace(out, max_wait=wait)
    return out
