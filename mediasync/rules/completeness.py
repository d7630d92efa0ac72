"""Whether an answer is whole: cut off by the service, or subtitles that lost cues.

An incomplete answer is an outcome to record and say, not a sidecar that looks done
and not a retry paid for again and again (issue 18, items 5 and 6). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

# Finish reasons that say the answer ended as the model meant it to. The field can be
# absent (lenient readings): an answer with text and no reason counts as whole.
_WHOLE = (None, "", "STOP", "FINISH_REASON_UNSPECIFIED")

# Subtitles lose cues (dropped, or cut at the end of the media) beyond this share of
# the segments with text: the output is incomplete, not written with a note.
SMALL_SHARE = 0.1


def cut_reason(finish_reason: str | None, text: str | None) -> str | None:
    """The finish reason of an answer the service stopped early with partial text
    (MAX_TOKENS, RECITATION, OTHER, …), else None. An answer with no text at all is
    a block or an out-of-tokens, judged elsewhere."""
    if text is None or finish_reason in _WHOLE:
        return None
    return finish_reason


def cut_message(reason: str, *, visible: int, thoughts: int, fix: str) -> str:
    """Why an answer was not written, and what the owner can change (``fix``)."""
    if reason == "MAX_TOKENS":
        spent = f"{visible:,} tokens of answer" + (
            f" and {thoughts:,} of thinking" if thoughts else "")
        return (f"incomplete: the answer was cut at the output limit (MAX_TOKENS) after "
                f"{spent}; not written; {fix}")
    return (f"incomplete: the service stopped the answer early ({reason}); not written; "
            "change the prompt or the model to ask again")


def cue_verdict(segments: int, clamped: int, dropped: int,
                repaired: Iterable[tuple[str, int]] = ()) -> tuple[str | None, str | None]:
    """(why the subtitles are incomplete, or None; a note for `status`, or None)."""
    lost = clamped + dropped
    bits = []
    if dropped:
        bits.append(f"{dropped} of {segments} cue(s) dropped (no usable time in the media)")
    if clamped:
        bits.append(f"{clamped} of {segments} cut at the end of the media")
    mended = [f"{why} ×{n}" for why, n in repaired]
    said = ", ".join(bits)
    if segments and lost / segments > SMALL_SHARE:
        return said, None
    notes = [said] if said else []
    if mended:
        notes.append(f"{sum(n for _, n in repaired)} cue(s) mended ({', '.join(mended)})")
    return None, "; ".join(notes) or None
