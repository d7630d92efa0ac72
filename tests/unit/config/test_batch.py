"""[batch] and [folders.batch]: modes, defaults, a folder's override, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediasync.config import BatchConfig, ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[3]


def _parse(batch: dict | None = None, folder_batch: dict | None = None):  # noqa: ANN202
    folder: dict = {"path": "/a"}
    if folder_batch is not None:
        folder["batch"] = folder_batch
    data: dict = {"folders": [folder, {"path": "/b"}]}
    if batch is not None:
        data["batch"] = batch
    return parse_config(data)


def test_defaults_off_50_30h() -> None:
    c = _parse()
    assert c.batch == BatchConfig("off", 50, 30 * 3600.0)
    assert c.batch_for(Path("/a/x.jpg")) == c.batch


def test_folder_overrides_only_the_keys_it_names() -> None:
    c = _parse({"mode": "auto", "min_outputs": 10, "max_wait": "2h"}, {"mode": "always"})
    assert c.batch_for(Path("/a/x.jpg")) == BatchConfig("always", 10, 7200.0)
    assert c.batch_for(Path("/b/x.jpg")) == BatchConfig("auto", 10, 7200.0)


@pytest.mark.parametrize(("batch", "folder", "message"), [
    ({"mde": "auto"}, None, "batch.mde: unknown key; did you mean 'mode'?"),
    ({"mode": "sometimes"}, None, "batch.mode: 'sometimes' is not one of off, auto, always"),
    ({"min_outputs": 0}, None, "batch.min_outputs: must be a positive integer"),
    ({"max_wait": "49h"}, None, "batch.max_wait: '49h' is longer than a batch job may run"),
    (None, {"min_output": 3}, "folders[0].batch.min_output: unknown key; did you mean "
                              "'min_outputs'?"),
    (None, "auto", "folders[0].batch: must be a table"),
])
def test_bad_keys_are_one_line_naming_the_key(batch, folder, message) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError) as e:
        _parse(batch, folder)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_example_documents_the_defaults() -> None:
    c = load_config(REPO / "mediasync.example.toml")
    assert c.batch == BatchConfig()
    assert c.folders[1].batch == BatchConfig(mode="auto")
