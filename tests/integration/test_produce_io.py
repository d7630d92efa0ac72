"""The producer in-process against the emulator over loopback: its file calls go
through the folder's own threads, and what it records survives a crash."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path, PurePath

import httpx
import pytest

from mediasync.config import parse_config
from mediasync.emulator import Emulator
from mediasync.engine.context import Context
from mediasync.engine.dispatch import Engine
from mediasync.engine.halt import Halt
from mediasync.engine.produce import Job, Producer
from mediasync.gemini import Budgets, GeminiClient, Usage, generate_class
from mediasync.gemini.pacing import FILES
from mediasync.local import sidecar
from mediasync.local.folderio import FolderIO
from mediasync.media.samples import png_bytes
from mediasync.rules import desired
from mediasync.store import Store
from tests.helpers import AfterGenerate, Clock, Recording, engine_setup


class HangAfterGenerate:
    """A FolderIO gate: once armed, every file call under ``folder`` blocks until released."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder)
        self.armed = threading.Event()
        self.release = threading.Event()
        self.blocked = 0

    def __call__(self, folder: str) -> None:
        if folder == self.folder and self.armed.is_set():
            self.blocked += 1
            self.release.wait(30)


async def _pass(engine: Engine) -> None:
    await engine.refresh()
    await engine.scan()
    await engine.run(until_idle=True)
    await engine.sweep()


# -- finding 3: render, prepare, the moved check and the write go through FolderIO ---
def test_a_folder_that_stops_answering_mid_generation_gets_no_write_from_the_shared_pool(
        tmp_path: Path, emu: Emulator) -> None:
    config, store = engine_setup(tmp_path, emu.base_url)
    inbox = tmp_path / "inbox"
    (inbox / "photo.png").write_bytes(png_bytes(seed=71))
    side = inbox / "photo.png.caption.md"
    gate = HangAfterGenerate(inbox)
    client = GeminiClient("k", emu.base_url,
                          http=httpx.AsyncClient(transport=AfterGenerate(gate.armed.set)))
    engine = Engine(config, store, client, once=True, clock=Clock(),
                    fs=FolderIO(timeout=0.3, gate=gate))

    async def scenario() -> None:
        try:
            await asyncio.wait_for(_pass(engine), 20)
            # The share hung while the answer was on its way: nothing was written
            # behind FolderIO's back, and nothing recorded as the file's failure.
            assert gate.blocked >= 1
            assert not side.exists()
            assert all(r.outcome != "failed" for r in store.get_outputs(
                str(inbox / "photo.png")).values())
            gate.armed.clear()
            gate.release.set()
            for _ in range(100):  # the stuck call returns; the folder answers again
                if not engine.fs.hung(str(inbox)):
                    break
                await asyncio.sleep(0.02)
            await asyncio.wait_for(_pass(engine), 20)
            assert side.exists()
        finally:
            gate.release.set()
            await client.aclose()

    asyncio.run(scenario())
    store.close()


# -- finding 5: the pending hash is taken over the bytes written ----------------------
class Crash(BaseException):
    """The process dies here (nothing after it runs)."""


def test_an_empty_answer_written_just_before_a_crash_is_ours_afterwards(
        tmp_path: Path, emu: Emulator, monkeypatch) -> None:
    config, store = engine_setup(tmp_path, emu.base_url)
    inbox = tmp_path / "inbox"
    photo = inbox / "photo.png"
    photo.write_bytes(png_bytes(seed=72))
    client = GeminiClient("k", emu.base_url)
    engine = Engine(config, store, client, once=True, clock=Clock())
    # The producer on its own, beside the engine that made the first pass.
    producer = Producer(Context.of(config, store, client, once=True, clock=Clock()), engine,
                        Halt(store), exists=_lexists, jitter=lambda: 0.5,
                        forget_copy=engine.mirror.forget_copy)
    real = sidecar.write_atomic

    def write_then_die(*a: object, **k: object) -> object:
        real(*a, **k)  # type: ignore[arg-type]
        raise Crash

    async def scenario() -> None:
        try:
            await _pass(engine)
            [want] = desired.desired(config.folders[0], str(photo), "image", config.api.model)
            side = Path(want.sidecar)
            side.unlink()
            sha = store.get_path(str(photo)).sha256
            row = store.get_outputs(str(photo))[want.suffix]
            # An answer with nothing in it (an empty SRT renders as ""), written to
            # disk as "\n"; the process dies before recording it as written.
            job = Job(str(photo), str(inbox), PurePath("photo.png"), sha, want, row, None, 1)
            monkeypatch.setattr(sidecar, "write_atomic", write_then_die)
            with pytest.raises(Crash):
                await producer.write(job, "", Usage())
            monkeypatch.setattr(sidecar, "write_atomic", real)
            assert side.read_bytes() == b"\n"
            assert store.get_outputs(str(photo))[want.suffix].outcome == "writing"

            await producer.output(str(photo), PurePath("photo.png"), sha, want)
            after = store.get_outputs(str(photo))[want.suffix]
            assert after.outcome == "written"  # ours, not taken for the owner's edit
            assert after.written_hash == sidecar.text_hash(b"\n")
        finally:
            await client.aclose()

    asyncio.run(scenario())
    store.close()


async def _lexists(folder: str, path: str) -> bool:
    return os.path.lexists(path)


# -- finding 6: one place decides the system instruction, placeholders filled -------

def _sent_systems(tmp_path: Path, emu: Emulator, folder: dict) -> list[str | None]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "photo.png").write_bytes(png_bytes(seed=73))
    config = parse_config({
        "api": {"base_url": emu.base_url},
        "daemon": {"state_dir": str(tmp_path / "state"), "settle": "0s",
                   "requests_per_minute": 6000},
        "folders": [{"path": str(inbox), **folder}],
    })
    store = Store(tmp_path / "state" / "state.db")
    wire = Recording()
    client = GeminiClient("k", emu.base_url, http=httpx.AsyncClient(transport=wire))
    engine = Engine(config, store, client, once=True, clock=Clock())

    async def scenario() -> None:
        try:
            await _pass(engine)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    store.close()
    return [((b.get("systemInstruction") or {}).get("parts") or [{}])[0].get("text")
            for b in wire.bodies]


def test_a_folders_system_instruction_goes_out_with_its_placeholders_filled(tmp_path, emu):
    sent = _sent_systems(tmp_path, emu, {
        "system_instruction": "Answer about {filename} in {folder} only.",
        "prompts": [{"kinds": ["image"], "prompt": "Caption.", "sidecar": ".caption.md"}],
    })
    assert sent == ["Answer about photo.png in inbox only."]


def test_a_prompts_own_system_instruction_wins_over_the_folders(tmp_path, emu):
    sent = _sent_systems(tmp_path, emu, {
        "system_instruction": "Folder's.",
        "prompts": [{"kinds": ["image"], "prompt": "Caption.", "sidecar": ".caption.md",
                     "system_instruction": "Prompt's, for {filename}."}],
    })
    assert sent == ["Prompt's, for photo.png."]


# -- finding 7: a quota pause of the files class, in the mirror and the producer ------
def test_a_paused_files_class_waits_for_its_reset_without_counting_attempts(tmp_path, emu):
    config, store = engine_setup(tmp_path, emu.base_url)
    photo = tmp_path / "inbox" / "photo.png"
    photo.write_bytes(png_bytes(seed=74))
    clock = Clock()
    budgets = Budgets(clock=clock)
    client = GeminiClient("k", emu.base_url, budgets=budgets)
    engine = Engine(config, store, client, once=True, clock=clock)
    # 30 minutes of bare 429s ended in a pause of file calls until midnight PT.
    pause = budgets.pause(FILES, "file requests", "")

    async def scenario() -> None:
        try:
            for _ in range(2):
                await _pass(engine)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    [c] = store.all_contents()
    assert c.attempts == 0  # no failure of the file
    assert c.retry_at == pause.resume_at  # not 30 s later, again and again until midnight
    assert c.error and c.error.startswith("waiting")
    assert emu.stats()["requests"].get("start", 0) == 0
    store.close()


def test_a_paused_model_is_no_failure_of_the_output(tmp_path, emu):
    config, store = engine_setup(tmp_path, emu.base_url)
    photo = tmp_path / "inbox" / "photo.png"
    photo.write_bytes(png_bytes(seed=75))
    clock = Clock()
    budgets = Budgets(clock=clock)
    client = GeminiClient("k", emu.base_url, budgets=budgets)
    engine = Engine(config, store, client, once=True, clock=clock)
    pause = budgets.pause(generate_class(config.api.model), "daily quota", config.api.model)

    async def scenario() -> None:
        try:
            await _pass(engine)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    [row] = store.get_outputs(str(photo)).values()
    assert (row.outcome, row.attempts, row.retry_at) == ("failed", 0, pause.resume_at)
    assert emu.stats()["requests"].get("generate", 0) == 0
    store.close()
