"""Structured answers: the JSON Schema a prompt asks for, the request that asks for
it, and the check of the answer before anything is written.

JSON mode answers with the JSON as a string in the first text part (wire/38),
sometimes followed by whitespace. An answer that does not parse or does not
match the schema is asked for once more; a second bad one is an
:class:`InvalidAnswer` (transient: the next try may well succeed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Any

from mediasync.config import PromptConfig
from mediasync.gemini import GeminiClient, Usage
from mediasync.gemini.models import Generation
from mediasync.rules import completeness

ATTEMPTS = 2  # an invalid answer is asked for once more

# Caption + keywords for an XMP sidecar, from one call.
XMP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "caption": {"type": "string", "description": "one or two plain sentences"},
        "keywords": {
            "type": "array",
            "items": {"type": "string"},
            "maxItems": 12,
            "description": "short lower-case tags for a photo library",
        },
    },
    "required": ["caption", "keywords"],
    "propertyOrdering": ["caption", "keywords"],
}
_ALT_TEXT = {"type": "string", "description": "alt text for someone who cannot see the image"}

SUBTITLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "segments": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "start": {"type": "number", "minimum": 0,
                              "description": "seconds from the start of the media"},
                    "end": {"type": "number", "minimum": 0,
                            "description": "seconds from the start of the media"},
                    "text": {"type": "string"},
                    "speaker": {"type": "string"},
                },
                "required": ["start", "end", "text"],
                "propertyOrdering": ["start", "end", "speaker", "text"],
            },
        },
    },
    "required": ["segments"],
}

# Built-in prompts get an instruction against "Here is a caption:" preambles. Keyed
# by the prompt text, so a user's own wording is left alone unless they set `system`.
_CAPTION_ONLY = ("Reply with the caption only: no preamble, no quotation marks, "
                 "no notes about the task.")
BUILTIN_SYSTEM: dict[str, str] = {
    "Caption this image in one sentence.": _CAPTION_ONLY,
    "Describe this video in a few sentences.": (
        "Reply with the description only: no preamble, no notes about the task."),
    "Transcribe this audio. Use proper punctuation and paragraph breaks.": (
        "Reply with the transcript only: no preamble, no timestamps, no notes about "
        "the task."),
}
_BY_FORMAT = {
    "json": "Reply with JSON that matches the response schema, and nothing else.",
    "xmp": ("Reply with JSON: a caption for a photo library (plain sentences, no "
            "preamble) and a few keywords."),
    "subtitles": ("Reply with JSON: the speech as timed subtitle segments in order, "
                  "each a sentence or two, times in seconds from the start."),
}


class InvalidAnswer(Exception):
    """The service answered twice with JSON that does not fit the schema."""

    def __init__(self, reason: str, usage: Usage) -> None:
        super().__init__(reason)
        self.reason = reason
        self.usage = usage


def schema_for(spec: PromptConfig | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    if spec.format == "json" and spec.schema:
        return _loads(spec.schema)
    if spec.format == "xmp":
        if not spec.alt_text:
            return XMP_SCHEMA
        props = {**XMP_SCHEMA["properties"], "alt_text": _ALT_TEXT}
        return {**XMP_SCHEMA, "properties": props,
                "required": [*XMP_SCHEMA["required"], "alt_text"],
                "propertyOrdering": [*XMP_SCHEMA["propertyOrdering"], "alt_text"]}
    if spec.format == "subtitles":
        return SUBTITLE_SCHEMA
    return None


@lru_cache(maxsize=64)
def _loads(text: str) -> dict[str, Any]:
    return json.loads(text)


def system_for(spec: PromptConfig | None, prompt: str) -> str | None:
    """The system instruction: the prompt's own, else the built-in one for its kind."""
    if spec is not None and spec.system_instruction:
        return spec.system_instruction
    if spec is not None and spec.format in _BY_FORMAT:
        return _BY_FORMAT[spec.format]
    return BUILTIN_SYSTEM.get(prompt)


def generation_config(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    # responseJsonSchema takes standard JSON Schema; responseSchema takes the OpenAPI
    # subset (upper-case types), which a user's schema file would not be.
    return {"responseMimeType": "application/json", "responseJsonSchema": schema}


def parse(text: str | None, schema: dict[str, Any]) -> Any:
    """The answer's JSON value if it matches ``schema``; else ValueError with the reason."""
    from jsonschema import validators  # imported by structured prompts only

    if text is None:
        raise ValueError("no text in the answer")
    body = text.strip()
    if body.startswith("```"):
        # A fenced block is a plausible reading of "reply with JSON"; take its inside.
        body = body.strip("`").removeprefix("json").strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError as e:
        raise ValueError(f"the answer is not JSON ({e.msg} at character {e.pos})") from None
    validator = validators.validator_for(schema)(schema)
    error = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        raise ValueError(f"the answer does not match the schema at {where}: "
                         f"{_short(error.message)}")
    return value


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Answer:
    generation: Generation
    value: Any  # the parsed JSON for a structured prompt, else None
    usage: Usage  # of every call made for it
    where: str | None = None  # asked in parts: the part this answer (not whole) was about


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(**{f.name: getattr(a, f.name) + getattr(b, f.name) for f in fields(Usage)})


async def ask(
    client: GeminiClient,
    model: str,
    *,
    file_uri: str,
    mime_type: str,
    prompt: str,
    system: str | None,
    schema: dict[str, Any] | None,
    knobs: dict[str, Any] | None = None,
    service_tier: str | None = None,
    clip: tuple[float, float] | None = None,
    accept: Callable[[Any], str | None] | None = None,
) -> Answer:
    """Generate, and for a structured prompt check the answer (asking once more if bad).

    An answer the service cut off (finishReason other than STOP, with text) is
    returned as it is, never re-asked here: asking the same again buys the same cut
    (issue 18, item 5). ``accept(value)`` may find a valid answer unusable: it
    returns what to tell the model when asking once more (the problem named), and a
    second such answer is returned all the same, for the caller to judge.
    Raises :class:`InvalidAnswer` after two answers that do not parse or fit the
    schema; ApiError passes through.
    """
    usage = Usage()
    reason = ""
    usable: Answer | None = None
    asked = prompt
    for _ in range(ATTEMPTS if schema is not None else 1):
        gen = await client.generate(
            model, file_uri=file_uri, mime_type=mime_type, prompt=asked,
            generation_config={**(knobs or {}), **(generation_config(schema) or {})} or None,
            system_instruction=system, service_tier=service_tier, clip=clip,
        )
        usage = _add(usage, gen.usage)
        if (schema is None or gen.blocked or gen.text is None
                or completeness.cut_reason(gen.finish_reason, gen.text)):
            return Answer(gen, None, usage)
        try:
            value = parse(gen.text, schema)
        except ValueError as e:
            reason = str(e)
            continue
        problem = accept(value) if accept is not None else None
        if problem is None:
            return Answer(gen, value, usage)
        usable = Answer(gen, value, usage)
        asked = f"{prompt}\n\n{problem}"
    if usable is not None:
        return replace(usable, usage=usage)
    raise InvalidAnswer(reason, usage)
