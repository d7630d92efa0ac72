"""Fixtures shared by several test files (pytest finds them here; no import needed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mediasync.emulator import Emulator, EmulatorConfig


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """A default emulator on a free loopback port. Files that need other settings
    (a key, shorter clocks, a granularity) define their own `emu`, which wins."""
    e = Emulator(EmulatorConfig(port=0)).start()
    yield e
    e.stop()
