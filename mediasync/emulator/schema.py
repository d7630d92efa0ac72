"""JSON mode: a deterministic, minimal instance of the requested schema, filled from
the file's facts (its description, kind and duration).

Takes ``responseJsonSchema`` (JSON Schema) and ``responseSchema`` (the OpenAPI
subset, upper-case types), in camelCase or snake_case. Like the live service it
ignores keywords outside the documented subset (``pattern``, ``not``,
``minLength``, ``uniqueItems``…): a client must validate what it gets. Numbers named like an
end or a duration get the media's length, so subtitle clients see a cue that
ends exactly at the end of the media.
"""

from __future__ import annotations

import json
from typing import Any

_MAX_DEPTH = 12
_END_NAMES = {"end", "stop", "end_time", "endtime", "duration", "to"}


def requested(config: Any) -> dict[str, Any] | None:
    """The schema a generationConfig asks for with application/json, if any."""
    if not isinstance(config, dict):
        return None
    mime = config.get("responseMimeType") or config.get("response_mime_type")
    if mime != "application/json":
        return None
    for key in ("responseJsonSchema", "response_json_schema", "responseSchema",
                "response_schema"):
        schema = config.get(key)
        if isinstance(schema, dict):
            return schema
    return {}  # JSON mode without a schema: any JSON will do


def answer_text(schema: dict[str, Any], *, label: str, kind: str,
                duration: float | None) -> str:
    """The JSON as the live service sends it: compact, as text, trailing " \\n" (wire/38)."""
    facts = {"label": label, "kind": kind, "duration": duration}
    value = _instance(schema, schema, facts, name="", depth=0)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + " \n"


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}
    return schema


def _type(schema: dict[str, Any]) -> str | None:
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if str(x).lower() != "null"), t[0] if t else None)
    if isinstance(t, str):
        return t.lower()  # OpenAPI's OBJECT, STRING…
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return None


def _instance(schema: Any, root: dict[str, Any], facts: dict[str, Any], *, name: str,
              depth: int) -> Any:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return _instance(options[0], root, facts, name=name, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    t = _type(schema)
    if t == "object":
        props = schema.get("properties") or {}
        required = [k for k in schema.get("required") or [] if k in props]
        return {k: _instance(props[k], root, facts, name=k, depth=depth + 1) for k in required}
    if t == "array":
        lo = _int(schema.get("minItems"), 0)
        hi = _int(schema.get("maxItems"), max(lo, 1))
        n = min(max(lo, 1), hi)
        return [_instance(schema.get("items") or {}, root, facts, name=f"{name}[]",
                          depth=depth + 1) for _ in range(n)]
    if t in ("number", "integer"):
        return _number(schema, facts, name, integer=t == "integer")
    if t == "boolean":
        return False
    if t == "null":
        return None
    if t == "string" or t is None:
        return _string(schema, facts, name)
    return None


def _int(value: Any, default: int) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return default


def _number(schema: dict[str, Any], facts: dict[str, Any], name: str, *,
            integer: bool) -> int | float:
    value: float = 0.0
    lo = schema.get("minimum")
    if isinstance(lo, (int, float)):
        value = float(lo)
    if name.lower() in _END_NAMES and facts["duration"] is not None:
        value = max(value, float(facts["duration"]))
    hi = schema.get("maximum")
    if isinstance(hi, (int, float)):
        value = min(value, float(hi))
    return int(value) if integer else round(value, 3)


def _string(schema: dict[str, Any], facts: dict[str, Any], name: str) -> str:
    fmt = schema.get("format")
    if fmt == "date-time":
        return "1970-01-01T00:00:00Z"
    if fmt == "date":
        return "1970-01-01"
    # Items of a list read as tags; anything else carries the plain label.
    text = facts["kind"] if name.endswith("[]") else facts["label"]
    hi = schema.get("maxLength")
    if isinstance(hi, int) and hi >= 0:
        text = text[:hi]
    return text
