"""Config of the output formats (json, xmp, subtitles), placeholders, structured answers
and the emulator's JSON mode."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import pytest

from mediasync.config import ConfigError, parse_config
from mediasync.emulator import schema as emu_schema
from mediasync.outputs import placeholders, structured
from mediasync.rules import desired

HOME = Path("/home/alice")
HEAD = '[[folders]]\npath = "/media/photos"\n[[folders.prompts]]\nkinds = ["image"]\n' \
       'prompt = "p"\n'


def parse(body: str, source: Path | None = None):
    return parse_config(tomllib.loads(HEAD + body), source=source, home=HOME)


def err(body: str) -> str:
    with pytest.raises(ConfigError) as ei:
        parse(body)
    assert "\n" not in str(ei.value)
    return str(ei.value)


def test_json_prompt_with_inline_schema_and_a_schema_file(tmp_path):
    p = parse('format = "json"\nsidecar = ".json"\nschema = { type = "object" }\n')
    assert json.loads(p.folders[0].prompts[0].schema) == {"type": "object"}
    (tmp_path / "s.json").write_text('{"type": "array", "items": {"type": "string"}}')
    p = parse('format = "json"\nsidecar = ".json"\nschema = "s.json"\n',
              source=tmp_path / "config.toml")
    assert json.loads(p.folders[0].prompts[0].schema)["type"] == "array"


@pytest.mark.parametrize("body, expected", [
    ('format = "jsn"\nsidecar = ".j"\n',
     "folders[0].prompts[0].format: 'jsn' is not one of text, json, xmp, subtitles; "
     "did you mean 'json'?"),
    ('format = "json"\nsidecar = ".json"\n', "folders[0].prompts[0].schema: missing"),
    ('format = "json"\nsidecar = ".json"\nschema = { type = "objekt" }\n',
     "folders[0].prompts[0].schema: not a valid JSON Schema"),
    ('format = "json"\nsidecar = ".json"\nschema = "/nope.json"\n',
     "folders[0].prompts[0].schema: no such file '/nope.json'"),
    ('sidecar = ".md"\nschema = { type = "object" }\n',
     'folders[0].prompts[0].schema: only applies to format = "json"'),
    ('format = "subtitles"\n', 'folders[0].prompts[0].kinds: subtitles need audio or video'),
    ('format = "xmp"\nlanguage = "english!"\n',
     "folders[0].prompts[0].language: 'english!' is not a language code"),
    ('format = "xmp"\nnaming = "stemm"\n', "did you mean 'stem'?"),
    ('format = "xmp"\nalt_txt = true\n',
     "folders[0].prompts[0].alt_txt: unknown key; did you mean 'alt_text'?"),
])
def test_output_errors_name_their_key(body, expected):
    assert expected in err(body)


def test_subtitles_defaults_and_file_names():
    cfg = parse_config(tomllib.loads(
        '[[folders]]\npath = "/m"\n[[folders.prompts]]\nkinds = ["video"]\n'
        'prompt = "t"\nformat = "subtitles"\nsubtitles = ["srt", "vtt"]\n'
        'language = ["en", "de"]\n'), home=HOME)
    folder = cfg.folders[0]
    wants = desired.desired(folder, "/m/clip.mp4", "video", "m")
    assert [Path(w.sidecar).name for w in wants] == [
        "clip.en.srt", "clip.en.vtt", "clip.de.srt", "clip.de.vtt"]
    # srt and vtt of one language ask the same thing; languages differ.
    assert wants[0].prompt_hash == wants[1].prompt_hash != wants[2].prompt_hash
    assert {".en.srt", ".de.vtt"} <= cfg.sidecar_suffixes()


def test_plain_text_prompts_keep_their_hash():
    cfg = parse('sidecar = ".caption.md"\n')
    [want] = desired.desired(cfg.folders[0], "/media/photos/a.jpg", "image", "m")
    # What earlier versions recorded: existing text sidecars are not regenerated.
    assert want.prompt_hash == hashlib.sha256(b"p").hexdigest()[:16]
    cfg = parse('sidecar = ".caption.md"\nsystem_instruction = "Be brief."\n')
    [want] = desired.desired(cfg.folders[0], "/media/photos/a.jpg", "image", "m")
    assert want.prompt_hash != desired.prompt_hash("p")


def test_xmp_naming():
    cfg = parse('format = "xmp"\n')
    [want] = desired.desired(cfg.folders[0], "/media/photos/a.cr2.jpg", "image", "m")
    assert want.sidecar == "/media/photos/a.cr2.jpg.xmp"
    cfg = parse('format = "xmp"\nnaming = "stem"\n')
    [want] = desired.desired(cfg.folders[0], "/media/photos/IMG_1.jpg", "image", "m")
    assert want.sidecar == "/media/photos/IMG_1.xmp"


def test_placeholders_fill_known_names_and_leave_the_rest():
    text = ("{filename} in {folder} ({relpath}) {duration} {taken} {gps} {language} {nope} "
            '{"a": 1}')
    out = placeholders.fill(text, {"filename": "a.jpg", "folder": "trip", "relpath": "x/a.jpg",
                                   "duration": None, "taken": "2024-05-01 10:00:00"})
    assert out == "a.jpg in trip (x/a.jpg)  2024-05-01 10:00:00   {nope} {\"a\": 1}"
    assert placeholders.used(text) == {"filename", "folder", "relpath", "duration", "taken",
                                        "gps", "language"}
    assert placeholders.format_duration(754) == "12 min 34 s"


def test_structured_parse_accepts_plausible_readings_and_names_the_fault():
    schema = {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}}
    assert structured.parse('{"a": 1} \n', schema) == {"a": 1}
    assert structured.parse('```json\n{"a": 2}\n```', schema) == {"a": 2}
    with pytest.raises(ValueError, match="not JSON"):
        structured.parse("Here is the JSON: {", schema)
    with pytest.raises(ValueError, match="at a: 'x' is not of type 'integer'"):
        structured.parse('{"a": "x"}', schema)


def test_builtin_prompts_get_a_no_preamble_instruction():
    assert "caption only" in structured.system_for(None, "Caption this image in one sentence.")
    assert structured.system_for(None, "My own prompt") is None


def test_emulator_builds_a_minimal_valid_instance_from_the_schema():
    from jsonschema import validate

    schemas = [
        structured.SUBTITLE_SCHEMA,
        structured.schema_for(parse('format = "xmp"\nalt_text = true\n').folders[0].prompts[0]),
        {"type": "object", "required": ["n", "k", "e", "r"], "$defs": {"t": {"type": "string"}},
         "properties": {"n": {"type": "integer", "minimum": 3}, "k": {"enum": ["x", "y"]},
                        "e": {"type": ["null", "boolean"]}, "r": {"$ref": "#/$defs/t"}}},
    ]
    for s in schemas:
        text = emu_schema.answer_text(s, label="L", kind="video", duration=2.5)
        assert text.endswith(" \n")  # as the live service sends it (wire/38)
        validate(json.loads(text), s)
    sub = json.loads(emu_schema.answer_text(structured.SUBTITLE_SCHEMA, label="L", kind="video",
                                            duration=2.5))
    assert sub == {"segments": [{"start": 0.0, "end": 2.5, "text": "L"}]}
    # OpenAPI-style responseSchema (upper-case types) is read too.
    openapi = {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["a"]}
    assert emu_schema.requested({"response_mime_type": "application/json",
                                 "responseSchema": openapi}) == openapi
    assert json.loads(emu_schema.answer_text(openapi, label="L", kind="image",
                                             duration=None)) == {"a": "L"}


OPENAPI_XMP = {
    "type": "OBJECT",
    "properties": {"caption": {"type": "STRING"},
                   "keywords": {"type": "ARRAY", "items": {"type": "STRING"}}},
    "required": ["caption", "keywords"],
}


def test_the_sdk_gets_schema_answers_from_the_emulator(emu):
    """google-genai sends response_json_schema / response_schema its own way; both work."""
    import io

    genai = pytest.importorskip("google.genai")
    from google.genai import types

    from mediasync.media.samples import png_bytes

    client = genai.Client(api_key="k", http_options=types.HttpOptions(
        base_url=emu.base_url, api_version="v1beta"))
    f = client.files.upload(file=io.BytesIO(png_bytes()), config={"mime_type": "image/png"})
    for config in (
        types.GenerateContentConfig(response_mime_type="application/json",
                                    response_json_schema=structured.XMP_SCHEMA,
                                    system_instruction="Reply with JSON."),
        types.GenerateContentConfig(response_mime_type="application/json",
                                    response_schema=OPENAPI_XMP),
    ):
        r = client.models.generate_content(model="gemini-2.5-flash",
                                           contents=[f, "Caption it."], config=config)
        value = structured.parse(r.text, structured.XMP_SCHEMA)
        assert value["keywords"] == ["image"] and "image/png" in value["caption"]


@pytest.mark.parametrize("preset, formats", [("photos", {"xmp", "text"}),
                                             ("video", {"subtitles", "text"})])
def test_init_presets_write_configs_that_load(tmp_path, preset, formats):
    import subprocess
    import sys

    cfg = tmp_path / "config.toml"
    r = subprocess.run([sys.executable, "-m", "mediasync", "init", str(cfg), "--folder",
                        str(tmp_path), "--preset", preset], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    from mediasync.config import load_config

    loaded = load_config(cfg)
    assert {p.format for p in loaded.folders[0].prompts} == formats
    assert max(len(line) for line in cfg.read_text().splitlines()) <= 100


def test_text_outputs_in_other_languages_get_the_code_before_the_extension():
    cfg = parse('sidecar = ".caption.md"\nlanguage = ["de", "fr"]\n')
    wants = desired.desired(cfg.folders[0], "/media/photos/a.jpg", "image", "m")
    assert [Path(w.sidecar).name for w in wants] == ["a.jpg.caption.de.md", "a.jpg.caption.fr.md"]
    assert wants[0].prompt_hash != wants[1].prompt_hash
