"""The outputs a file should have: one per prompt of its folder for its kind,
language and subtitle format, each with the hash that identifies it. Pure.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mediasync.config import FolderConfig, PromptConfig
from mediasync.rules.naming import output_key, sidecar_for
from mediasync.rules.rows import Desired


def prompt_hash(prompt: str, identity: str = "") -> str:
    # identity is "" for a plain text prompt: its hash stays what it always was.
    blob = prompt if not identity else f"{prompt}\0{identity}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def desired(folder: FolderConfig, path: str, kind: str, default_model: str) -> list[Desired]:
    """The outputs a file should have: one per file each prompt of its folder writes
    for its kind (a language, a subtitle format)."""
    out = []
    for p in folder.prompts_for(kind):
        for suffix, language, subformat in p.outputs():
            key = output_key(suffix, p.naming)
            out.append(Desired(
                suffix=key,
                prompt=p.prompt,
                model=p.effective_model(default_model),
                prompt_hash=prompt_hash(p.prompt, _identity(p, language)),
                sidecar=str(sidecar_for(Path(path), key)),
                spec=p,
                language=language,
                subformat=subformat,
            ))
    return out


def _identity(p: PromptConfig, language: str | None) -> str:
    identity = p.identity()
    if language:
        identity += f"\0lang={language}"
    return identity
