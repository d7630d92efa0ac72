"""The emulator object: lifecycle (start, stop, port) and the Python control API over its
state (:mod:`mediasync.emulator.state`)."""

from __future__ import annotations

import threading
from typing import Any

from .batches import Batches
from .config import EmulatorConfig
from .faults import Fault, FaultSet
from .models import Catalog
from .quota import Quotas
from .server import Server
from .state import EmulatorState
from .store import Clock, Quirks, Store


class Emulator:
    """A local Gemini File API. ``start()`` serves from background threads."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.state = EmulatorState(config or EmulatorConfig())
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # The state's parts, as tests and benchmarks reach them.
    @property
    def config(self) -> EmulatorConfig:
        return self.state.config

    @property
    def quirks(self) -> Quirks:
        return self.state.quirks

    @property
    def clock(self) -> Clock:
        return self.state.clock

    @property
    def store(self) -> Store:
        return self.state.store

    @property
    def quota(self) -> Quotas:
        return self.state.quota

    @property
    def models(self) -> Catalog:
        """The models served: ``retire``, ``restore``, ``route``, ``add``."""
        return self.state.models

    @property
    def batches(self) -> Batches:
        """Batch jobs: ``pending``/``duration`` of new jobs, ``end(id, state)``, ``bad_lines``."""
        return self.state.batches

    @property
    def faults(self) -> FaultSet:
        return self.state.faults

    @faults.setter
    def faults(self, faults: FaultSet) -> None:  # a benchmark counts fired faults its own way
        self.state.faults = faults

    # -- lifecycle -------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._server = Server((self.config.host, self.config.port), self.state)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="mediasync-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return self._server.base_url

    # -- control ---------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        self.faults.add(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def list_files(self, ver: str = "v1beta") -> list[dict[str, Any]]:
        """Snapshot of the live File resources, oldest first."""
        base = self.base_url if self._server is not None else "http://emulator"
        return self.state.list_files(base, ver)
