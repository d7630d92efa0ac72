"""Answers cut off and subtitles that lose cues, through the real `mediasync sync`
against the emulator (issue 18, items 5 and 6). Sidecars are read back with the
libraries players use (srt, webvtt-py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import srt
import webvtt

from mediasync.emulator import Emulator, EmulatorConfig, Fault
from mediasync.media.samples import mp4_bytes, png_bytes, wav_bytes
from tests.helpers import Recording, cli, db_rows, write_config

SUBTITLES = """
[[folders.prompts]]
kinds = ["audio", "video"]
format = "subtitles"
prompt = "Transcribe the speech."
subtitles = ["srt", "vtt"]
language = "en"
{extra}
"""

XMP = """
[[folders.prompts]]
kinds = ["image"]
format = "xmp"
prompt = "Caption this photo."
"""


@pytest.fixture
def emu() -> Iterator[Emulator]:
    # A model whose answers stop at 8,192 tokens (as gemini-2.0-flash's did): a long
    # transcript does not fit in one.
    e = Emulator(EmulatorConfig(port=0, output_token_limit=8192)).start()
    yield e
    e.stop()


def _generations(emu: Emulator) -> int:
    return emu.stats()["requests"].get("generate", 0)


def _outputs(cfg: Path) -> list[tuple[str, str]]:
    return db_rows(cfg, "SELECT outcome, message FROM outputs ORDER BY suffix")


# -- item 5: an answer cut at the output limit ----------------------------------------
def test_a_caption_cut_at_max_tokens_is_not_written_and_not_paid_for_again(tmp_path, emu):
    def config(knobs: str) -> Path:
        return write_config(tmp_path, emu.base_url, folder_extra=knobs)

    photo = tmp_path / "inbox" / "photo.png"
    side = tmp_path / "inbox" / "photo.png.caption.md"
    # Thinking off, 12 tokens: the caption (about 40 tokens) ends mid-sentence.
    cfg = config("max_output_tokens = 12\nthinking_budget = 0")
    photo.write_bytes(png_bytes(seed=501))
    r = cli(cfg, "sync")
    assert r.returncode == 1  # sync says so while such an output remains
    assert not side.exists()
    [(outcome, message)] = _outputs(cfg)
    assert outcome == "incomplete"
    assert "MAX_TOKENS" in message and "max_output_tokens" in message
    status = cli(cfg, "status").stdout
    assert "photo.png.caption.md: incomplete" in status and "max_output_tokens" in status
    assert _generations(emu) == 1
    assert cli(cfg, "sync").returncode == 1
    assert _generations(emu) == 1  # the same limit would cut it again: not asked again

    cfg = config("max_output_tokens = 400\nthinking_budget = 0")  # the owner's fix
    assert cli(cfg, "sync").returncode == 0
    assert _generations(emu) == 2
    assert side.read_text().rstrip().endswith("”")  # the whole caption
    assert _outputs(cfg) == [("written", None)]


def test_a_cut_xmp_answer_is_incomplete_not_invalid_json_retried_for_ever(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url, prompts=XMP)
    (tmp_path / "inbox" / "photo.png").write_bytes(png_bytes(seed=502))
    emu.add_fault(Fault(kind="truncated", times=None))  # every answer cut half-way
    assert cli(cfg, "sync").returncode == 1
    assert cli(cfg, "sync").returncode == 1
    [(outcome, message)] = _outputs(cfg)
    assert outcome == "incomplete" and "MAX_TOKENS" in message
    assert _generations(emu) == 1  # not "not JSON, retry", twice a pass, for ever
    assert not (tmp_path / "inbox" / "photo.png.xmp").exists()


@pytest.mark.parametrize("reason", ["RECITATION", "OTHER"])
def test_any_early_stop_with_partial_text_is_incomplete(tmp_path, emu, reason):
    cfg = write_config(tmp_path, emu.base_url)
    (tmp_path / "inbox" / "photo.png").write_bytes(png_bytes(seed=503))
    emu.add_fault(Fault(kind="truncated", reason=reason))
    assert cli(cfg, "sync").returncode == 1
    [(outcome, message)] = _outputs(cfg)
    assert outcome == "incomplete" and reason in message
    assert not (tmp_path / "inbox" / "photo.png.caption.md").exists()


def test_a_three_hour_podcast_gets_its_whole_transcript(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url)  # the built-in prompts: ranges = "auto"
    podcast = tmp_path / "inbox" / "podcast.wav"
    podcast.write_bytes(wav_bytes(3 * 3600, freq=7, rate=100))  # 3 h, 2 MB
    r = cli(cfg, "sync", timeout=300)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "inbox" / "podcast.wav.transcript.txt").read_text()
    stamps = re.findall(r"^\[(\d\d:\d\d:\d\d)\]", text, re.MULTILINE)
    # One line per 10 s of speech, each once, in order, to the last ten seconds.
    want = [f"{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}" for t in range(0, 10800, 10)]
    assert stamps == want
    # The whole answer was cut once; then parts sized from it, each whole.
    calls = _generations(emu)
    assert 3 <= calls <= 12
    assert _outputs(cfg) == [("written", None)]


def test_subtitles_of_a_long_video_are_asked_in_clips_with_continuous_times(tmp_path):
    emu = Emulator(EmulatorConfig(port=0, output_token_limit=2048)).start()
    sent: list[dict] = []
    try:
        cfg = write_config(tmp_path, emu.base_url, prompts=SUBTITLES.format(extra=""))
        (tmp_path / "inbox" / "talk.mp4").write_bytes(mp4_bytes(50 * 60, seed=5))
        r = cli(cfg, "sync", timeout=300)
        assert r.returncode == 0, r.stderr
        calls = _generations(emu)
        sent = emu.stats()["requests"]
    finally:
        emu.stop()
    assert calls > 2 and sent
    cues = list(srt.parse((tmp_path / "inbox" / "talk.en.srt").read_text()))
    times = [(c.start.total_seconds(), c.end.total_seconds()) for c in cues]
    assert times[0][0] == 0 and times[-1][1] == 3000
    # Continuous: each cue ends where the next begins (the emulator counts a clip's
    # times from the clip's start; they are moved to the media's).
    assert all(a[1] == b[0] for a, b in zip(times, times[1:], strict=False))
    assert len(cues) == 600  # a segment every 10 s, split in two by max_cue (7 s)
    vtt = webvtt.from_string((tmp_path / "inbox" / "talk.en.vtt").read_text())
    assert len(vtt.captions) == 600 and vtt.captions[-1].end == "00:50:00.000"


def test_a_video_clip_is_sent_as_video_metadata_offsets(tmp_path, emu):
    from mediasync.gemini import GeminiClient

    sent: list[dict] = []

    class Recording(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith(":generateContent"):
                sent.append(json.loads(request.content))
            return await self.inner.handle_async_request(request)

    import asyncio

    async def scenario() -> None:
        async with GeminiClient("k", emu.base_url,
                                http=httpx.AsyncClient(transport=Recording())) as c:
            path = tmp_path / "v.mp4"
            path.write_bytes(mp4_bytes(120.0))
            f = await c.upload(path, "video/mp4")
            f = await c.wait_processed(f.name, sleep=lambda s: asyncio.sleep(0.05))
            gen = await c.generate("gemini-2.5-flash", file_uri=f.uri or "", mime_type="video/mp4",
                                   prompt="Describe.", clip=(60.0, 90.5))
            # The emulator bills the clip alone: 30.5 s of video, not 120.
            assert gen.usage.prompt_tokens < 300 * 35

    asyncio.run(scenario())
    assert sent[0]["contents"][0]["parts"][0]["videoMetadata"] == {
        "startOffset": "60s", "endOffset": "90.5s"}


# -- item 6: subtitle cues -----------------------------------------------------------
def _subtitles(tmp_path: Path, emu: Emulator, segments: list[dict], times: int = 1) -> Path:
    cfg = write_config(tmp_path, emu.base_url, prompts=SUBTITLES.format(extra=""))
    (tmp_path / "inbox" / "clip.mp4").write_bytes(mp4_bytes(3.0, seed=6))
    emu.add_fault(Fault(kind="answer", text=json.dumps({"segments": segments}), times=times))
    return cfg


def test_the_segments_the_issue_lost_are_written_with_a_note(tmp_path, emu):
    cfg = _subtitles(tmp_path, emu, [
        {"start": 0.0, "end": 1.0, "text": "one"},
        {"start": 0.1, "end": 0.9, "text": "two"},  # less than 0.2 s after another
        {"start": 1.8, "end": 1.2, "text": "three"},  # its start after its end
        {"start": 2500, "end": 2900, "text": "four"},  # milliseconds where seconds were asked
    ])
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    cues = list(srt.parse((tmp_path / "inbox" / "clip.en.srt").read_text()))
    assert " ".join(c.content for c in cues) == "one two three four"
    assert [(c.start.total_seconds(), c.end.total_seconds()) for c in cues] == [
        (0, 1), (1.2, 1.8), (2.5, 2.9)]
    vtt = webvtt.from_string((tmp_path / "inbox" / "clip.en.vtt").read_text())
    assert [c.text for c in vtt.captions] == ["one two", "three", "four"]
    assert _generations(emu) == 1
    status = json.loads(cli(cfg, "status", "--json").stdout)
    [srt_side] = [s for f in status["files"] for s in f["sidecars"] if s["name"] == "clip.en.srt"]
    assert srt_side["outcome"] == "written" and "3 cue(s) mended" in srt_side["message"]



def test_cues_lost_beyond_a_small_share_are_asked_again_once_naming_the_problem(tmp_path, emu):
    import asyncio

    from mediasync.config import parse_config
    from mediasync.engine.dispatch import Engine
    from mediasync.gemini import GeminiClient
    from mediasync.store import Store

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "clip.mp4").write_bytes(mp4_bytes(3.0, seed=7))
    config = parse_config({
        "api": {"base_url": emu.base_url},
        "daemon": {"state_dir": str(tmp_path / "state"), "settle": "0s"},
        "folders": [{"path": str(inbox), "prompts": [{
            "kinds": ["video"], "format": "subtitles", "prompt": "Transcribe the speech.",
            "subtitles": ["srt", "vtt"], "language": "en"}]}],
    })
    lost = [{"start": 0.0, "end": 1.0, "text": "first answer"},
            {"start": 5.0, "end": 6.0, "text": "after the end"},
            {"start": 1e20, "end": 1e21, "text": "absurd"}]
    emu.add_fault(Fault(kind="answer", text=json.dumps({"segments": lost})))
    store = Store(tmp_path / "state" / "state.db")
    wire = Recording()
    client = GeminiClient("k", emu.base_url, http=httpx.AsyncClient(transport=wire))
    engine = Engine(config, store, client, once=True)

    async def scenario() -> None:
        try:
            await engine.refresh()
            await engine.scan()
            await engine.run(until_idle=True)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    store.close()
    # Once more for .srt and .vtt together, with the problem named; no more.
    assert len(wire.bodies) == 2
    again = wire.bodies[1]["contents"][0]["parts"][1]["text"]
    assert again.startswith("Transcribe the speech.")
    assert "2 of 3 cue(s) dropped (no usable time in the media)" in again
    assert "within the media's 3.0 seconds" in again
    text = (inbox / "clip.en.srt").read_text()
    assert "first answer" not in text and len(list(srt.parse(text))) == 1


def test_cues_lost_twice_are_incomplete_and_not_asked_a_third_time(tmp_path, emu):
    lost = [{"start": 0.0, "end": 1.0, "text": "kept"},
            {"start": 5.0, "end": 6.0, "text": "after the end"}]
    cfg = _subtitles(tmp_path, emu, lost, times=2)
    assert cli(cfg, "sync").returncode == 1
    assert cli(cfg, "sync").returncode == 1
    assert _generations(emu) == 2
    rows = _outputs(cfg)
    assert [o for o, _ in rows] == ["incomplete", "incomplete"]
    assert all("1 of 2 cue(s) dropped" in m for _, m in rows)
    assert not (tmp_path / "inbox" / "clip.en.srt").exists()
    status = cli(cfg, "status").stdout
    assert "clip.en.vtt [subtitles]: incomplete (incomplete subtitles: 1 of 2" in status
