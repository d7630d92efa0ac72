"""The knobs as each model family takes them (config/families.py, config/limits.py): pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediasync.config import ConfigError, Knobs, family, parse_config


@pytest.mark.parametrize("model,name,levels,off", [
    ("gemini-3.5-flash-lite", "3", ("minimal", "low", "medium", "high"), False),
    ("models/gemini-3.8-flash", "3", ("minimal", "low", "medium", "high"), False),
    ("gemini-3-flash-preview", "3", ("minimal", "low", "medium", "high"), False),
    ("gemini-3.1-pro-preview", "3", ("low", "high"), False),
    ("gemini-flash-latest", "3", ("minimal", "low", "medium", "high"), False),  # the newest
    ("gemini-2.5-flash", "2.5", (), True),
    ("gemini-2.5-flash-lite", "2.5", (), True),
    ("gemini-2.5-pro", "2.5", (), False),
    ("gemini-2.0-flash", "none", (), False),
    ("gemma-3-27b-it", "none", (), False),
])  # fmt: skip
def test_the_family_is_a_function_of_the_name(model, name, levels, off) -> None:
    f = family(model)
    assert (f.name, f.levels, f.can_turn_off) == (name, levels, off)


def test_a_models_get_answer_that_says_no_thinking_wins() -> None:
    assert family("gemini-3.8-flash", thinking=False).name == "none"
    assert family("gemini-3.8-flash", thinking=True).name == "3"


def _thinking(value, model):
    r = Knobs(thinking=value).request(model)
    return r.generation_config.get("thinkingConfig"), r.notes


@pytest.mark.parametrize("value,model,sent,noted", [
    # 2.5: a budget, never a level
    ("off", "gemini-2.5-flash", {"thinkingBudget": 0}, False),
    (0, "gemini-2.5-flash", {"thinkingBudget": 0}, False),
    ("minimal", "gemini-2.5-flash", {"thinkingBudget": 512}, False),
    ("high", "gemini-2.5-flash", {"thinkingBudget": 24576}, False),
    (2048, "gemini-2.5-flash", {"thinkingBudget": 2048}, False),
    (-1, "gemini-2.5-flash", {"thinkingBudget": -1}, False),
    ("off", "gemini-2.5-pro", {"thinkingBudget": 128}, True),  # cannot stop thinking
    # 3.x: a level, never a budget; "off" is the lowest level, said once
    ("off", "gemini-3.5-flash-lite", {"thinkingLevel": "MINIMAL"}, True),
    (0, "gemini-3.8-flash", {"thinkingLevel": "MINIMAL"}, True),
    ("low", "gemini-3.8-flash", {"thinkingLevel": "LOW"}, False),
    (1000, "gemini-3.8-flash", {"thinkingLevel": "LOW"}, False),
    (8000, "gemini-3.8-flash", {"thinkingLevel": "MEDIUM"}, False),
    (30000, "gemini-3.8-flash", {"thinkingLevel": "HIGH"}, False),
    (-1, "gemini-3.8-flash", None, False),  # the model decides: its default
    ("off", "gemini-3.1-pro-preview", {"thinkingLevel": "LOW"}, True),
    ("medium", "gemini-3.1-pro-preview", {"thinkingLevel": "LOW"}, True),  # nearest below
    ("high", "gemini-3.1-pro-preview", {"thinkingLevel": "HIGH"}, False),
    # models that do not think get no thinkingConfig
    ("off", "gemini-2.0-flash", None, False),
    ("high", "gemini-2.0-flash", None, True),
    (None, "gemini-3.8-flash", None, False),
])  # fmt: skip
def test_thinking_is_mapped_per_family_never_both(value, model, sent, noted) -> None:
    got, notes = _thinking(value, model)
    assert got == sent
    assert bool(notes) is noted
    assert not (got and "thinkingBudget" in got and "thinkingLevel" in got)


def test_media_resolution_follows_the_family() -> None:
    k = Knobs(media_resolution="low")
    for model in ("gemini-2.5-flash", "gemini-3.5-flash-lite"):
        assert k.request(model).generation_config == {"mediaResolution": "MEDIA_RESOLUTION_LOW"}
    r = k.request("gemini-2.0-flash")
    assert r.generation_config == {} and "media_resolution" in r.notes[0]


def test_service_tier_is_top_level_and_standard_is_the_default() -> None:
    assert Knobs(service_tier="flex").request("gemini-3.8-flash").service_tier == "flex"
    assert Knobs(service_tier="standard").request("gemini-3.8-flash").service_tier is None
    assert Knobs().request("gemini-3.8-flash").service_tier is None


def _cfg(api=None, folder=None, prompt=None):
    f = {"path": "/x", **(folder or {})}
    if prompt is not None:
        f["prompts"] = [{"kinds": ["image"], "prompt": "p", "sidecar": ".c.md", **prompt}]
    return parse_config({"api": api or {}, "folders": [f]})


def test_service_tier_in_api_folder_and_prompt_the_innermost_wins() -> None:
    c = _cfg({"service_tier": "flex"}, {"service_tier": "standard"}, {"service_tier": "priority"})
    assert c.knobs_for(Path("/x/a.png"), c.folders[0].prompts[0]).service_tier == "priority"
    c = _cfg({"service_tier": "flex"}, None, {})
    assert c.knobs_for(Path("/x/a.png"), c.folders[0].prompts[0]).service_tier == "flex"
    assert c.api.flex_fallback is False and c.api.flex_fallback_after == 3
    assert c.api.flex_timeout == 1200.0


def test_thinking_and_thinking_budget_are_one_knob() -> None:
    c = _cfg(None, {"thinking_budget": 0}, {"thinking": "high"})
    assert c.knobs_for(Path("/x/a.png"), c.folders[0].prompts[0]).thinking == "high"
    c = _cfg(None, {"thinking": "low"}, {"thinking_budget": 0})
    assert c.knobs_for(Path("/x/a.png"), c.folders[0].prompts[0]).thinking == 0


@pytest.mark.parametrize("where,table,key", [
    ("folder", {"thinking": "none"}, "folders[0].thinking"),
    ("folder", {"thinking": True}, "folders[0].thinking"),
    ("folder", {"thinking": -5}, "folders[0].thinking"),
    ("prompt", {"thinking": "max"}, "folders[0].prompts[0].thinking"),
    ("prompt", {"thinking": "low", "thinking_budget": 0}, "folders[0].prompts[0].thinking_budget"),
    ("folder", {"service_tier": "fast"}, "folders[0].service_tier"),
    ("api", {"service_tier": "flexible"}, "api.service_tier"),
    ("api", {"flex_fallback": "yes"}, "api.flex_fallback"),
    ("api", {"flex_fallback_after": 0}, "api.flex_fallback_after"),
])  # fmt: skip
def test_a_bad_knob_is_one_line_naming_its_key(where, table, key) -> None:
    kw = {"api": table} if where == "api" else {where: table}
    if where == "prompt":
        kw = {"prompt": table}
    with pytest.raises(ConfigError) as e:
        _cfg(**kw)
    assert str(e.value).startswith(f"{key}: ") and "\n" not in str(e.value)


def test_an_unknown_thinking_word_lists_the_words() -> None:
    with pytest.raises(ConfigError, match="'none' is not one of off, minimal, low, medium, high"):
        _cfg(None, {"thinking": "none"})


def test_config_models_names_each_model_once_with_its_first_key() -> None:
    c = parse_config({"api": {"model": "gemini-3.8-flash"}, "folders": [{"path": "/x", "prompts": [
        {"kinds": ["image"], "prompt": "p", "sidecar": ".a.md"},
        {"kinds": ["image"], "prompt": "p", "sidecar": ".b.md", "model": "gemini-2.5-pro"},
        {"kinds": ["audio"], "prompt": "p", "sidecar": ".c.md", "model": "gemini-2.5-pro"}]}]})
    assert c.models() == {"gemini-3.8-flash": "api.model",
                          "gemini-2.5-pro": "folders[0].prompts[1].model"}
