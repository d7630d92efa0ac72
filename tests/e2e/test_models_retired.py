"""End to end, the real CLI against the emulator: a model the service no longer serves
(wire/41), `check` that names the models, Flex and provenance in `status` (issue 16)."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediasync.config import DEFAULT_API
from mediasync.emulator import Emulator, EmulatorConfig, Fault
from mediasync.media.samples import png_bytes
from tests.helpers import Running, cli, wait_for, write_config

DEFAULT = DEFAULT_API["model"]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(port=0, retired_models=("gemini-2.5-flash",))) as e:
        yield e


def _config(tmp_path: Path, emu: Emulator, api: str = "", folder_extra: str = "",
            **daemon: object) -> Path:
    cfg = write_config(tmp_path, emu.base_url, daemon=dict(daemon), folder_extra=folder_extra)
    cfg.write_text(cfg.read_text().replace("[api]\n", f"[api]\n{api}\n", 1))
    return cfg


def _photos(tmp_path: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        p = tmp_path / "inbox" / f"p{i}.png"
        p.write_bytes(png_bytes(16, 16, seed=200 + i))
        out.append(p)
    return out


def _calls(emu: Emulator, model: str) -> int:
    return emu.stats()["generate_by_model"].get(model, 0)


def test_sync_with_a_retired_model_holds_it_and_exits_2_then_a_fix_heals(tmp_path, emu):
    cfg = _config(tmp_path, emu, 'model = "gemini-2.5-flash"', max_generations=3)
    photos = _photos(tmp_path, 8)
    r = cli(cfg, "sync")
    assert r.returncode == 2, r.stderr
    held = "model gemini-2.5-flash is not available: set api.model or the prompt's model; " \
           "`mediasync check` lists the available ones"
    assert r.stderr.count(held) == 2  # said when learned, and once in the summary
    assert "8 file(s) wait for it" in r.stderr
    assert "failed" not in r.stderr
    assert _calls(emu, "gemini-2.5-flash") == 0  # the start-up look: no wave at all

    text = cli(cfg, "status").stdout
    assert text.count(held) == 1  # one HELD line; each file's reason points at it
    assert text.splitlines()[0] == f"HELD: {held}"
    assert text.count("waiting for model gemini-2.5-flash, which the service does not serve "
                      "(see HELD)") == 8 * 2  # each file, and its sidecar
    doc = json.loads(cli(cfg, "status", "--json").stdout)
    assert doc["held"] == [{"key": "model:gemini-2.5-flash", "message": held}]
    assert {f["state"] for f in doc["files"]} == {"waiting"}

    r = cli(cfg, "check")
    assert r.returncode == 2
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("FAIL api.model")]
    assert "model 'gemini-2.5-flash' is not available (retired or unknown: 404 NOT_FOUND)" \
        in line and "models that support generateContent: " in line and DEFAULT in line
    assert "gemini-embedding-001" not in line  # listed, but does not generate

    cfg.write_text(cfg.read_text().replace('model = "gemini-2.5-flash"', ""))  # the fix
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert all(p.with_name(p.name + ".caption.md").exists() for p in photos)
    doc = json.loads(cli(cfg, "status", "--json").stdout)
    assert doc["held"] == [] and {f["state"] for f in doc["files"]} == {"synced"}


def test_check_names_a_model_without_generate_content_by_its_key(tmp_path, emu):
    cfg = _config(tmp_path, emu)
    cfg.write_text(cfg.read_text() + '\n  [[folders.prompts]]\n  kinds = ["image"]\n'
                   '  prompt = "p"\n  sidecar = ".c.md"\n  model = "gemini-embedding-001"\n')
    r = cli(cfg, "check")
    assert r.returncode == 2, r.stdout
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("FAIL")]
    assert line == ("FAIL folders[0].prompts[0].model: 'gemini-embedding-001' exists but does "
                    "not support generateContent (it supports embedContent, countTextTokens)")
    assert f"ok   model {DEFAULT} (Gemini 3.5 Flash-Lite) (api.model): listed" in r.stdout


def test_check_says_a_transient_failure_is_not_a_missing_model(tmp_path, emu):
    cfg = _config(tmp_path, emu)
    emu.add_fault(Fault(kind="status", status=503, match="models.get", times=10))
    r = cli(cfg, "check")
    assert r.returncode == 0, r.stdout
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("warn model")]
    assert "could not be looked up now (503 UNAVAILABLE" in line
    assert "not a sign that it is missing" in line and "not available" not in r.stdout


def test_check_refuses_an_unknown_thinking_value_in_one_line(tmp_path, emu):
    cfg = _config(tmp_path, emu, folder_extra='thinking = "max"')
    r = cli(cfg, "check")
    assert r.returncode == 2
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("FAIL")]
    assert "folders[0].thinking: 'max' is not one of off, minimal, low, medium, high" in line


def test_check_says_what_thinking_off_becomes_on_a_model_that_cannot_stop(tmp_path, emu):
    cfg = _config(tmp_path, emu, folder_extra='thinking = "off"')
    r = cli(cfg, "check")
    assert r.returncode == 0
    assert (f"warn folders[0]: {DEFAULT} cannot turn thinking off; sending thinkingLevel "
            "MINIMAL, its lowest") in r.stdout


def test_daemon_holds_a_model_retired_while_it_runs_and_sighup_resumes(tmp_path, emu):
    cfg = _config(tmp_path, emu, 'model = "gemini-3.8-flash"', settle="100ms",
                  max_generations=2)
    d = Running(cfg)
    try:
        emu.models.retire("gemini-3.8-flash")
        photos = _photos(tmp_path, 10)
        held = "model gemini-3.8-flash is not available"
        wait_for(lambda: held in cli(cfg, "status").stdout, what="held in status",
                 proc=d.proc)
        wait_for(lambda: cli(cfg, "status", "--json").stdout.count('"waiting"') >= 10,
                 what="every file waiting", proc=d.proc)
        assert _calls(emu, "gemini-3.8-flash") <= 2  # one wave: max_generations
        said = [x for x in d.log().splitlines() if held in x and " DEBUG " not in x]
        assert len(said) == 1, said  # one log line for the model, not one per file
        assert not [f for f in json.loads(cli(cfg, "status", "--json").stdout)["files"]
                    if f["state"] == "failed"]

        cfg.write_text(cfg.read_text().replace('model = "gemini-3.8-flash"',
                                               'model = "gemini-3.7-flash"'))
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: all(p.with_name(p.name + ".caption.md").exists() for p in photos),
                 what="every caption after the reload", proc=d.proc)
        doc = json.loads(cli(cfg, "status", "--json").stdout)
        assert doc["held"] == []
        assert {s["model_version"] for f in doc["files"] for s in f["sidecars"]} == {
            "gemini-3.7-flash"}
    finally:
        assert d.stop() == 0, d.log()


def test_status_shows_the_model_and_tier_that_wrote_each_sidecar(tmp_path, emu):
    emu.models.route("gemini-2.5-pro", "gemini-3.8-flash")  # a silent re-route
    cfg = _config(tmp_path, emu, 'model = "gemini-2.5-pro"\nservice_tier = "flex"')
    _photos(tmp_path, 1)
    assert cli(cfg, "sync").returncode == 0
    doc = json.loads(cli(cfg, "status", "--json").stdout)
    (side,) = doc["files"][0]["sidecars"]
    assert (side["model"], side["model_version"], side["service_tier"]) == (
        "gemini-2.5-pro", "gemini-3.8-flash", "flex")
    assert "gemini-3.8-flash" in doc["costs"] and "gemini-2.5-pro" not in doc["costs"]
    text = cli(cfg, "status").stdout
    assert "p0.png.caption.md: written [by gemini-3.8-flash, flex]" in text
