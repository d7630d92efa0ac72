"""The outputs a file should have: one per prompt of its folder for its kind,
language and subtitle format, each with the hash that identifies it. Pure.
"""

from __future__ import annotations

import hashlib

from mediasync.config import FolderConfig, PromptConfig
from mediasync.rules.naming import output_key, sidecar_name
from mediasync.rules.rows import Desired


def prompt_hash(prompt: str, identity: str = "") -> str:
    # identity is "" for a plain text prompt: its hash stays what it always was.
    blob = prompt if not identity else f"{prompt}\0{identity}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def desired(folder: FolderConfig, path: str, kind: str, default_model: str) -> list[Desired]:
    """The outputs a file should have: one per file each prompt of its folder writes
    for its kind (a language, a subtitle format)."""
    # Built whole, not dataclasses.replace'd: asked for every file of every pass over
    # the library (a scan's rest check, `status`), where replace cost the most.
    return [Desired(d.suffix, d.prompt, d.model, d.prompt_hash, sidecar_name(path, d.suffix),
                    d.spec, d.language, d.subformat)
            for d in _outputs(folder, kind, default_model)]


def templates(folder: FolderConfig, kind: str, default_model: str) -> tuple[Desired, ...]:
    """``desired`` without the file: its outputs as every file of the folder and kind
    has them, each with no sidecar path (naming.sidecar_name makes a file's)."""
    return _outputs(folder, kind, default_model)


# The outputs of a (folder, kind, model) with no sidecar yet: the same for every file
# of the folder, so worked out once (prompt hashes included), not per file. Keyed by
# the folder's identity and holding it, so a reloaded config never meets old entries.
_CACHE: dict[tuple[int, str, str], tuple[FolderConfig, tuple[Desired, ...]]] = {}


def _outputs(folder: FolderConfig, kind: str, default_model: str) -> tuple[Desired, ...]:
    key = (id(folder), kind, default_model)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is folder:
        return hit[1]
    out = []
    for p in folder.prompts_for(kind):
        for suffix, language, subformat in p.outputs():
            key_ = output_key(suffix, p.naming)
            out.append(Desired(
                suffix=key_,
                prompt=p.prompt,
                model=p.effective_model(default_model),
                prompt_hash=prompt_hash(p.prompt, _identity(p, language)),
                sidecar="",
                spec=p,
                language=language,
                subformat=subformat,
            ))
    if len(_CACHE) >= 256:
        _CACHE.clear()
    _CACHE[key] = (folder, tuple(out))
    return _CACHE[key][1]


def _identity(p: PromptConfig, language: str | None) -> str:
    identity = p.identity()
    if language:
        identity += f"\0lang={language}"
    return identity
