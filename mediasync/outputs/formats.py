"""From an output's prompt to the request, and from the answer to the sidecar's text,
for each output format: text, json, xmp and subtitles.

The engine asks :func:`prepare` for the request (placeholders filled, system
instruction, schema) and :func:`render` for the bytes to write; it writes them
atomically itself. File reads here are small (headers, EXIF, the existing XMP).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from mediasync.local import sidecar
from mediasync.media import metadata
from mediasync.outputs import placeholders, structured, subtitles, xmp
from mediasync.rules import completeness, naming, states, steps
from mediasync.rules.rows import Desired, OutputRow

log = logging.getLogger("mediasync")

_LANGUAGE_ASK = ("Write the text in the language with the code “{language}”, translating "
                 "if the speech is in another language.")


@dataclass(frozen=True)
class Request:
    prompt: str
    system: str | None
    schema: dict[str, Any] | None
    duration: float | None  # seconds of the media, where known (subtitles clamp to it)
    source: str = ""  # the media file's path
    mime: str = ""  # the media file's MIME type


class Refused(Exception):
    """The sidecar there cannot take our answer (not XMP); it is left as it is."""


@dataclass(frozen=True)
class Rendered:
    text: str
    base: str | None  # hash of the bytes the text was merged into: write only over those
    note: str | None = None  # what the owner kept, what was clamped
    incomplete: str | None = None  # why this text must not be written as the whole answer
    marks: str | None = None  # XMP: what is ours in ``text`` (xmp.Marks), to remember


def knobs_fingerprint(config: dict[str, Any]) -> str:
    """A short mark of the generationConfig an output was asked with."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


_KNOBS_MARK = re.compile(r"\[knobs ([0-9a-f]{12})\]$")


def out_of_tokens(fingerprint: str) -> str:
    """Why a MAX_TOKENS answer had no text, what to change, and under which knobs."""
    return ("the service gave no answer (MAX_TOKENS): thinking used up max_output_tokens "
            "before any text; raise max_output_tokens or set thinking = \"off\" "
            f"[knobs {fingerprint}]")


def knobs_changed_since(message: str | None, fingerprint: str) -> bool:
    """An output with no text for lack of tokens is asked again once its knobs change
    (knobs are not part of an output's identity: the owner's fix would never apply)."""
    mark = _KNOBS_MARK.search(message or "")
    return mark is not None and mark.group(1) != fingerprint


def prepare(want: Desired, path: str, rel: PurePath, mime: str,
            system: str | None = None) -> Request:
    """The request for an output: reads the file's header or EXIF only if needed.

    ``system`` is the folder's system instruction (a cost knob): it stands in for
    the built-in one, the prompt's own wins over it. Placeholders are filled in
    whichever is sent.
    """
    spec = want.spec
    own = spec.system_instruction if spec is not None else None
    system = own or system or structured.system_for(spec, want.prompt)
    used = placeholders.used(want.prompt)
    if system:
        used |= placeholders.used(system)
    duration = None
    if (want.format == "subtitles" or "duration" in used
            or (spec is not None and spec.ranges is not None)):
        duration = metadata.duration(Path(path), mime)
    info = metadata.Exif()
    if used & set(placeholders.NEEDS_EXIF) and mime.startswith("image/"):
        info = metadata.exif(Path(path))
    values = {  # names that are not UTF-8 go to the model escaped (\\xe9)
        "filename": naming.shown(Path(path).name),
        "folder": naming.shown(Path(path).parent.name),
        "relpath": naming.shown(rel.as_posix()),
        "duration": placeholders.format_duration(duration),
        "taken": info.taken,
        "gps": info.gps,
        "language": want.language,
    }
    prompt = placeholders.fill(want.prompt, values)
    if want.language and "{language}" not in want.prompt:
        prompt += "\n\n" + placeholders.fill(_LANGUAGE_ASK, values)
    if system:
        system = placeholders.fill(system, values)
    return Request(prompt, system, structured.schema_for(spec), duration, path, mime)


JOINED = ("text", "subtitles")  # formats whose answers in parts are joined in order


def clips(want: Desired, kind: str) -> bool:
    """The output asks for a video in clips (``ranges``): each request holds one."""
    return (kind == "video" and want.spec is not None and want.spec.ranges is not None
            and want.format in JOINED)


def ranged(want: Desired, request: Request, mime: str) -> float | str | None:
    """The output's ``ranges`` setting where it applies: audio or video of known length,
    an answer that is joined in order (text, subtitles); else None (asked whole)."""
    spec = want.spec
    if (spec is None or spec.ranges is None or want.format not in ("text", "subtitles")
            or not mime.startswith(("audio/", "video/")) or request.duration is None):
        return None
    return spec.ranges


def cut_fix(want: Desired, request: Request, kind: str, thoughts: int) -> str:
    """What the owner can change so the answer fits: the settings, by name."""
    fixes = ["raise max_output_tokens"]
    if thoughts:
        fixes.append("lower thinking_budget (0 turns thinking off)")
    if (want.format in ("text", "subtitles") and kind in ("audio", "video")
            and (want.spec is None or want.spec.ranges is None)):
        fixes.append('set ranges = "auto" on the prompt to ask for the media in parts')
    return " or ".join([", ".join(fixes[:-1]), fixes[-1]] if len(fixes) > 1 else fixes)


def acceptance(want: Desired, request: Request) -> Callable[[Any], str | None] | None:
    """For an answer that parses but may still be unusable (subtitles losing cues):
    what to tell the model when asking once more, or None when it is fine."""
    if want.format != "subtitles" or want.spec is None:
        return None
    max_cue = want.spec.max_cue

    def check(value: Any) -> str | None:
        segments = value.get("segments") if isinstance(value, dict) else None
        cues = subtitles.cues_from(segments or [], duration=request.duration, max_cue=max_cue)
        problem, _ = completeness.cue_verdict(cues.segments, cues.clamped, cues.dropped)
        if problem is None:
            return None
        length = (f", within the media's {request.duration:.1f} seconds"
                  if request.duration is not None else "")
        return (f"An earlier answer could not be used: {problem}. Give every segment a "
                f"start before its end, in seconds (not milliseconds) from the start of "
                f"the media{length}.")

    return check


def render(want: Desired, text: str, value: Any, request: Request,
           on_disk: str | None, marks: str | None = None) -> Rendered:
    """The sidecar's new text. ``on_disk`` is the hash of our bytes there (text kinds);
    ``marks``: what we last wrote into the XMP sidecar (xmp.Marks as JSON)."""
    fmt = want.format
    if fmt == "json":
        return Rendered(json.dumps(value, ensure_ascii=False, indent=2) + "\n", on_disk)
    if fmt == "subtitles":
        assert want.spec is not None and want.subformat is not None
        cues = subtitles.cues_from(value.get("segments") or [], duration=request.duration,
                                   max_cue=want.spec.max_cue)
        incomplete, note = completeness.cue_verdict(cues.segments, cues.clamped, cues.dropped,
                                                    cues.repaired)
        return Rendered(subtitles.render(want.subformat, cues.cues), on_disk, note,
                        incomplete and f"incomplete subtitles: {incomplete}")
    if fmt == "xmp":
        return _render_xmp(want, value, Path(request.source), xmp.Marks.from_json(marks))
    return Rendered(sidecar.as_written(text), on_disk)


def check_xmp(want: Desired, source: Path) -> bytes | None:
    """The XMP sidecar's bytes (None: none yet), or Refused when it cannot take this
    file's answer: it is not XMP, or it holds another file's fields. Asked before
    the model is (an answer that could not be written is never paid for), and again
    when merging (the file may have changed meanwhile)."""
    target = Path(want.sidecar)
    existing = _read_regular(target)
    if existing is None:
        return None
    other = xmp.source_of(existing)
    mine = naming.shown(source.name)  # as merge records it
    if other and other != mine and any(_beside(source, name)
                                       for name in {other, naming.unshown(other)}):
        # photo.jpg and photo.heic both name photo.xmp: the first one keeps it.
        raise Refused(f"{target.name} holds mediasync's fields for {other}; "
                      f"not merging {source.name}'s into it")
    try:
        xmp.check(existing)
    except xmp.NotXmp as e:
        raise Refused(_not_xmp(target, e)) from None
    return existing


def _beside(source: Path, name: str) -> bool:
    """A file ``name`` next to ``source``; a name no file can have (a "/" in the XMP's
    record of its source) names none."""
    try:
        return os.path.lexists(source.with_name(name))
    except ValueError:
        return False


def _not_xmp(target: Path, e: xmp.NotXmp) -> str:
    return f"{target.name} is not an XMP sidecar mediasync can merge into: {e}; left as it is"


def _render_xmp(want: Desired, value: dict[str, Any], source: Path,
                remembered: xmp.Marks | None) -> Rendered:
    existing = check_xmp(want, source)
    fields = xmp.Fields(
        caption=" ".join(str(value.get("caption") or "").split()),
        keywords=tuple(str(k) for k in value.get("keywords") or ()),
        alt_text=(" ".join(str(value.get("alt_text") or "").split())
                  if want.spec is not None and want.spec.alt_text else None),
    )
    try:
        merged = xmp.merge(existing, fields, naming.shown(source.name), remembered)
    except xmp.NotXmp as e:
        raise Refused(_not_xmp(Path(want.sidecar), e)) from None
    note = None
    if merged.kept:
        note = f"kept the owner's {' and '.join(merged.kept)}"
    base = sidecar.text_hash(existing) if existing is not None else None
    return Rendered(merged.text, base, note, marks=merged.marks.to_json())


def _read_regular(path: Path) -> bytes | None:
    try:
        return sidecar.read_regular(path)
    except sidecar.NotRegularFile:
        raise Refused(f"{path.name} is not a regular file; left as it is") from None
    except OSError as e:
        raise Refused(f"cannot read {path.name}: {e.strerror or e}") from None


def xmp_state(target: Path, row: OutputRow | None) -> tuple[steps.SidecarState, str | None]:
    """An XMP sidecar is merged field by field: whoever touched the file, it is ours
    to merge into (the fields themselves say who owns them).

    While a write is recorded as pending (a crash before the rename), only the
    pending bytes are current: any other XMP there (darktable's) still lacks our
    fields, so it is stale and merged into again, never confirmed.
    """
    try:
        data = _read_regular(target)
    except Refused:
        return "foreign", None  # a symlink or unreadable file there: not ours to touch
    if data is None:
        return "missing", None
    digest = sidecar.text_hash(data)
    pending = states.pending_hash(row)
    if pending:
        return ("ours" if digest == pending else "stale"), digest
    return "ours", digest
