"""The outputs a file should have (rules/desired.py)."""

from __future__ import annotations

import dataclasses
from functools import partial

from mediasync.rules import desired, states
from mediasync.rules.rows import Desired, LocalFacts
from tests.helpers import output_row

NOW = 1_800_000_000.0
F = LocalFacts(size=10, mtime_ns=int((NOW - 100) * 1e9), inode=7)

WANT = Desired(
    ".caption.md", "Caption it.", "m", desired.prompt_hash("Caption it."), "/x.png.caption.md"
)


output = partial(output_row, WANT)


def test_desired_outputs_carry_the_effective_model_and_sidecar_path():
    from pathlib import Path

    from mediasync.config import FolderConfig, PromptConfig

    folder = FolderConfig(
        path=Path("/m"),
        prompts=(
            PromptConfig(("image",), "Caption it.", ".caption.md"),
            PromptConfig(("image", "video"), "Tags.", ".tags.txt", model="pro"),
            PromptConfig(("audio",), "Transcribe.", ".transcript.txt"),
        ),
    )
    wants = desired.desired(folder, "/m/a b.jpg", "image", "flash")
    assert [(w.suffix, w.model, w.sidecar) for w in wants] == [
        (".caption.md", "flash", "/m/a b.jpg.caption.md"),
        (".tags.txt", "pro", "/m/a b.jpg.tags.txt"),
    ]
    assert not states.is_current(output(model="flash"), dataclasses.replace(WANT, model="pro"), "s")
    # Every field but the sidecar is the folder's (desired builds each one whole).
    subs = PromptConfig(("video",), "Subtitles.", ".srt", format="subtitles",
                        language=("en", "de"), subtitles=("srt", "vtt"))
    folder = dataclasses.replace(folder, prompts=(*folder.prompts, subs))
    shared = desired._outputs(folder, "video", "flash")
    wants = desired.desired(folder, "/m/c.mp4", "video", "flash")
    assert len(wants) == len(shared) == 5
    for want, one in zip(wants, shared, strict=True):
        assert want == dataclasses.replace(one, sidecar=want.sidecar)
    assert {(w.language, w.subformat) for w in wants} == {
        (None, None), ("en", "srt"), ("en", "vtt"), ("de", "srt"), ("de", "vtt")}
