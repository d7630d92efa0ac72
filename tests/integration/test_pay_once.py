"""Money: a paid answer is not thrown away or bought twice (issue 18, items 7 and 8).

The engine in-process against the emulator over loopback; the emulator counts the
generateContent requests it answered.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx

from mediasync.emulator import Emulator
from mediasync.engine.dispatch import Engine
from mediasync.gemini import GeminiClient
from mediasync.media.samples import png_bytes
from tests.helpers import AfterGenerate, Clock, engine_setup


async def _pass(engine: Engine) -> None:
    await engine.refresh()
    await engine.scan()
    await engine.run(until_idle=True)
    await engine.sweep()


def _generations(emu: Emulator) -> int:
    return emu.stats()["requests"].get("generate", 0)


# -- item 7: an mtime touched while the answer is on its way -------------------------
def test_a_file_touched_while_generating_is_not_paid_for_twice(tmp_path: Path, emu: Emulator):
    config, store = engine_setup(tmp_path, emu.base_url)
    photo = tmp_path / "inbox" / "photo.png"
    photo.write_bytes(png_bytes(seed=181))

    touched = []

    def touch() -> None:
        # A backup tool or `touch`: the mtime moves, the bytes stay (once: unfixed, a
        # touch at every answer would pay for ever).
        if touched:
            return
        touched.append(True)
        st = photo.stat()
        os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))

    client = GeminiClient("k", emu.base_url, http=httpx.AsyncClient(transport=AfterGenerate(touch)))
    engine = Engine(config, store, client, once=True, clock=Clock())

    async def scenario() -> None:
        try:
            await _pass(engine)
            await _pass(engine)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    [row] = store.get_outputs(str(photo)).values()
    assert row.outcome == "written"
    assert Path(row.sidecar).exists()
    assert _generations(emu) == 1
    # The stat cache follows the touch: the next look reads nothing again.
    assert store.get_path(str(photo)).mtime_ns == photo.stat().st_mtime_ns
    store.close()


def test_a_file_whose_bytes_changed_while_generating_is_not_written(tmp_path, emu):
    config, store = engine_setup(tmp_path, emu.base_url)
    photo = tmp_path / "inbox" / "photo.png"
    photo.write_bytes(png_bytes(seed=182))
    changed = []

    def rewrite() -> None:
        if not changed:  # the same size, other bytes: only the hash can tell
            data = bytearray(photo.read_bytes())
            data[-20] ^= 0xFF
            photo.write_bytes(bytes(data))
            changed.append(True)

    client = GeminiClient("k", emu.base_url,
                          http=httpx.AsyncClient(transport=AfterGenerate(rewrite)))
    engine = Engine(config, store, client, once=True, clock=Clock())

    async def scenario() -> None:
        try:
            await _pass(engine)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    row = store.get_path(str(photo))
    outputs = store.get_outputs(str(photo))
    # The first answer was for other bytes: the sidecar on disk answers the new ones.
    assert all(o.sha256 == row.sha256 for o in outputs.values())
    assert _generations(emu) == 2
    store.close()


# -- item 8: the same bytes at several paths ----------------------------------------
def _two_folders(tmp_path: Path, emu: Emulator) -> tuple[Path, Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[api]\nbase_url = "{emu.base_url}"\n\n[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
        'settle = "0s"\nrequests_per_minute = 6000\n\n'
        f'[[folders]]\npath = "{a}"\n\n[[folders]]\npath = "{b}"\n')
    return cfg, a, b


def test_a_hard_link_and_a_copy_in_another_folder_cost_one_generation(tmp_path, emu):
    from tests.helpers import cli, db_rows

    cfg, a, b = _two_folders(tmp_path, emu)
    data = png_bytes(seed=183)
    (a / "photo.png").write_bytes(data)
    os.link(a / "photo.png", a / "linked.png")
    (b / "copy.png").write_bytes(data)
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert _generations(emu) == 1
    texts = {(d / n).read_text() for d, n in ((a, "photo.png.caption.md"),
                                               (a, "linked.png.caption.md"),
                                               (b, "copy.png.caption.md"))}
    assert len(texts) == 1  # one answer, three sidecars
    rows = db_rows(cfg, "SELECT path, outcome, message, prompt_tokens FROM outputs ORDER BY path")
    assert [o for _, o, _, _ in rows] == ["written"] * 3
    paid = [r for r in rows if r[2] is None]
    shared = [r for r in rows if r[2] is not None]
    assert len(paid) == 1 and paid[0][3] > 0
    assert all("paid once" in m and t == 0 for _, _, m, t in shared)
    status = cli(cfg, "status").stdout
    assert "(the answer paid for " in status

    # A later pass: a new copy is written from the kept answer, not paid for again.
    (b / "later.png").write_bytes(data)
    assert cli(cfg, "sync").returncode == 0
    assert _generations(emu) == 1
    assert (b / "later.png.caption.md").read_text() in texts

    # The owner deletes a sidecar we wrote: that is a re-roll, asked afresh.
    (b / "later.png.caption.md").unlink()
    assert cli(cfg, "sync").returncode == 0
    assert _generations(emu) == 2

    # Once no file holds the bytes, their answers are forgotten with them.
    for p in (a / "photo.png", a / "linked.png", b / "copy.png", b / "later.png"):
        p.unlink()
    assert cli(cfg, "sync").returncode == 0
    assert db_rows(cfg, "SELECT COUNT(*) FROM answers") == [(0,)]
