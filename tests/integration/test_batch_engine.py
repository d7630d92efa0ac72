"""The engine with [batch] against the emulator, time injected: gather, submit, poll,
write; auto's threshold; a restart resumes; a job that ends without results."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mediasync.config import parse_config
from mediasync.emulator import Emulator, EmulatorConfig, Fault
from mediasync.engine.dispatch import Engine
from mediasync.gemini import GeminiClient, RetryPolicy
from mediasync.media.samples import png_bytes
from mediasync.rules import batching
from mediasync.store import Store
from tests.helpers import Clock, advance


@pytest.fixture()
def emu():  # noqa: ANN201
    with Emulator(EmulatorConfig(batch_pending=20, batch_duration=120)) as e:
        yield e


def _config(tmp_path: Path, emu: Emulator, prompts: list | None = None,
            knobs: dict[str, Any] | None = None, **batch: Any):  # noqa: ANN202
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    folder: dict[str, Any] = {"path": str(inbox), **(knobs or {})}
    if prompts:
        folder["prompts"] = prompts
    return parse_config({
        "api": {"base_url": emu.base_url},
        "daemon": {"state_dir": str(tmp_path / "state"), "settle": "0s",
                   "requests_per_minute": 6000},
        "batch": batch,
        "folders": [folder],
    })


class Run:
    def __init__(self, tmp_path: Path, emu: Emulator, clock: Clock, prompts: list | None = None,
                 knobs: dict[str, Any] | None = None, **batch: Any) -> None:
        self.store = Store(tmp_path / "state" / "state.db")
        self.client = GeminiClient("k", emu.base_url)
        self.billed: list[tuple[str, str]] = []
        self.client.on_usage = lambda model, usage, tier: self.billed.append((model, tier))
        self.emu, self.clock = emu, clock

        self.engine = Engine(_config(tmp_path, emu, prompts, knobs, **batch), self.store,
                             self.client, once=True, clock=clock, sleep=self.sleep)

    async def sleep(self, seconds: float) -> None:
        """Time passes for the test and the emulator alike, never really waited."""
        advance(self.clock, self.emu, seconds)
        await asyncio.sleep(0)

    async def sync(self) -> None:
        await self.engine.scan()
        await self.engine.run(until_idle=True)

    async def close(self) -> None:
        await self.client.aclose()
        self.store.close()


async def _no_wait(_seconds: float) -> None:
    """A retry's wait, not taken."""


def _images(tmp_path: Path, n: int, seed: int = 0) -> list[Path]:
    out = []
    (tmp_path / "inbox").mkdir(exist_ok=True)
    for i in range(n):
        p = tmp_path / "inbox" / f"p{seed + i}.png"
        p.write_bytes(png_bytes(seed=seed + i + 1))
        out.append(p)
    return out


def _sidecar(p: Path) -> Path:
    return p.with_name(p.name + ".caption.md")


def test_always_one_job_polled_with_backoff_written_billed_at_batch(tmp_path, emu) -> None:  # noqa: ANN001
    clock = Clock()
    imgs = _images(tmp_path, 4)

    async def go() -> None:
        r = Run(tmp_path, emu, clock, mode="always")
        await r.sync()
        assert emu.batches.created == 1 and "generate" not in emu.stats()["requests"]
        (job,) = r.store.jobs()
        assert job.state == batching.OPEN and job.name
        assert all(not _sidecar(p).exists() for p in imgs)
        assert r.store.copies_held_by_jobs() == {c.sha256 for c in r.store.all_contents()}
        seen: list[str | None] = []
        await r.engine.batcher.wait(lambda jobs: seen.append(jobs[0].service_state))
        assert "RUNNING" in seen and "PENDING" in seen
        await r.engine.run(until_idle=True)
        for p in imgs:
            assert _sidecar(p).read_text().startswith("[mediasync emulator]")
        assert "generate" not in emu.stats()["requests"]
        assert sorted(t for _, t in r.billed) == ["batch"] * 4
        rows = [o for o in r.store.all_outputs()]
        assert {o.service_tier for o in rows} == {"batch"} and len(rows) == 4
        assert r.store.copies_held_by_jobs() == set()
        # A second pass sends nothing: every output is current.
        await r.sync()
        assert emu.batches.created == 1
        await r.close()
    asyncio.run(go())


def test_auto_lone_file_interactive_backlog_batched(tmp_path, emu) -> None:  # noqa: ANN001
    clock = Clock()
    (lone,) = _images(tmp_path, 1)

    async def go() -> None:
        r = Run(tmp_path, emu, clock, mode="auto", min_outputs=3)
        await r.sync()
        assert _sidecar(lone).exists() and emu.batches.created == 0
        assert emu.stats()["requests"]["generate"] == 1
        backlog = _images(tmp_path, 3, seed=10)
        await r.sync()
        assert emu.batches.created == 1 and not any(_sidecar(p).exists() for p in backlog)
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        assert all(_sidecar(p).exists() for p in backlog)
        assert emu.stats()["requests"]["generate"] == 1
        await r.close()
    asyncio.run(go())


def test_restart_resumes_polling_and_never_resubmits(tmp_path, emu) -> None:  # noqa: ANN001
    clock = Clock()
    imgs = _images(tmp_path, 3)

    async def go() -> None:
        r = Run(tmp_path, emu, clock, mode="always")
        await r.sync()
        await r.close()
        r = Run(tmp_path, emu, clock, mode="always")  # a new process, same state
        await r.sync()  # the outputs wait in the recorded job: nothing gathered again
        assert emu.batches.created == 1
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        assert all(_sidecar(p).exists() for p in imgs) and emu.batches.created == 1
        await r.close()
    asyncio.run(go())


@pytest.mark.parametrize("end", ["EXPIRED", "FAILED", "CANCELLED", "deleted",
                                 "PARTIALLY_SUCCEEDED"])  # done, in a state we do not know
def test_a_job_ending_without_results_sends_outputs_interactive_once(
        tmp_path, emu, end) -> None:  # noqa: ANN001
    clock = Clock()
    imgs = _images(tmp_path, 3)

    async def go() -> None:
        r = Run(tmp_path, emu, clock, mode="always")
        await r.sync()
        (job,) = r.store.jobs()
        job_id = (job.name or "").removeprefix("batches/")
        if end == "deleted":
            emu.batches.delete(job_id)  # by another tool
        else:
            emu.batches.end(job_id, f"BATCH_STATE_{end}")
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        assert all(_sidecar(p).exists() for p in imgs)
        assert emu.stats()["requests"]["generate"] == 3 and emu.batches.created == 1
        (ended,) = r.store.jobs(open_only=False)
        # Ended when the service said so, not cancelled at max_wait a day later.
        assert ended.message == ("the job is gone (404)" if end == "deleted" else
                                 f"ended {end}")
        await r.close()
    asyncio.run(go())


@pytest.mark.parametrize("status", [429, 503, 500])
def test_lost_create_answer_is_adopted_and_a_refused_create_retried(
        tmp_path, emu, status) -> None:  # noqa: ANN001
    clock = Clock()
    imgs = _images(tmp_path, 2)

    async def go() -> None:
        # times=5: outlives the transport's in-call retries of a 5xx, if it made any
        emu.add_fault(Fault(status=status, match="batch.create", times=5))
        r = Run(tmp_path, emu, clock, mode="always")
        await r.sync()
        assert emu.batches.created == 0
        assert emu.stats()["requests"]["batch.create"] == 1  # never retried in the call
        (job,) = r.store.jobs()
        assert job.state == batching.CREATING and str(status) in (job.message or "")
        emu.clear_faults()
        emu.add_fault(Fault(kind="lost_answer"))
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        assert emu.batches.created == 1  # adopted from the listing, not made twice
        assert all(_sidecar(p).exists() for p in imgs)
        assert "generate" not in emu.stats()["requests"]
        await r.close()
    asyncio.run(go())


def test_open_past_max_wait_is_cancelled_and_outputs_go_interactive(tmp_path, emu) -> None:  # noqa: ANN001
    clock = Clock()
    imgs = _images(tmp_path, 2)

    async def go() -> None:
        emu.batches.duration = 40 * 3600  # the service sits on it
        r = Run(tmp_path, emu, clock, mode="always", max_wait="2h")
        await r.sync()
        await r.engine.batcher.wait()
        (job,) = r.store.jobs(open_only=False)
        assert job.message == "open past max_wait: cancelled" and clock() - job.created_at >= 7200
        assert emu.stats()["requests"]["batch.cancel"] == 1
        await r.engine.run(until_idle=True)
        assert all(_sidecar(p).exists() for p in imgs)
        assert emu.stats()["requests"]["generate"] == 2 and emu.batches.created == 1
        await r.close()
    asyncio.run(go())


def test_a_copy_that_would_not_outlive_the_job_is_renewed_before_submit(tmp_path, emu) -> None:  # noqa: ANN001
    clock = Clock()
    (img,) = _images(tmp_path, 1)

    async def go() -> None:
        r = Run(tmp_path, emu, clock, mode="off")
        await r.sync()  # mirrored and captioned interactively
        _sidecar(img).unlink()  # the owner wants it again, now by batch
        advance(clock, emu, 20 * 3600)  # 28 h left: less than max_wait (30 h) + margin
        old = r.store.all_contents()[0]
        await r.close()
        r = Run(tmp_path, emu, clock, mode="always")
        await r.sync()
        (item,) = r.store.job_items(r.store.jobs()[0].key)
        fresh = r.store.all_contents()[0]
        assert fresh.remote_name != old.remote_name and item.file_uri == fresh.uri
        assert fresh.expires_at >= clock() + 30 * 3600 + batching.COPY_MARGIN
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        assert _sidecar(img).exists()
        await r.close()
    asyncio.run(go())


def test_an_error_line_is_judged_as_an_interactive_error_would_be(tmp_path, emu) -> None:  # noqa: ANN001
    clock = Clock()
    imgs = _images(tmp_path, 2)

    async def go() -> None:
        r = Run(tmp_path, emu, clock, mode="always")
        await r.sync()
        # Another tool deletes one copy while the job runs: its line is a 403.
        victim = r.store.all_contents()[0]
        emu.store.delete(victim.remote_name.removeprefix("files/"))
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        rows = {o.sha256: o for o in r.store.all_outputs()}
        assert rows[victim.sha256].outcome == "failed" and rows[victim.sha256].retry_at
        assert "permission" in (rows[victim.sha256].message or "").lower()
        others = [o for s, o in rows.items() if s != victim.sha256]
        assert [o.outcome for o in others] == ["written"]
        # Transient: the next pass makes a new copy and asks interactively, not by batch.
        advance(clock, emu, 3600)
        await r.sync()
        assert all(_sidecar(p).exists() for p in imgs)
        assert emu.batches.created == 1 and emu.stats()["requests"]["generate"] == 1
        await r.close()
    asyncio.run(go())


def test_xmp_and_subtitles_by_batch_are_checked_and_written_as_interactive_ones(
        tmp_path, emu) -> None:  # noqa: ANN001
    from mediasync.media.samples import wav_bytes

    clock = Clock()
    (img,) = _images(tmp_path, 1)
    memo = tmp_path / "inbox" / "memo.wav"
    memo.write_bytes(wav_bytes(2.0))
    prompts = [{"kinds": ["image"], "format": "xmp", "prompt": "Describe it."},
               {"kinds": ["audio"], "format": "subtitles", "prompt": "Transcribe it.",
                "subtitles": ["srt", "vtt"]}]

    async def go() -> None:
        r = Run(tmp_path, emu, clock, prompts, mode="always")
        await r.sync()
        assert emu.batches.created == 2  # one job per model and settings (schema, system)
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        xmp = img.with_name(img.name + ".xmp").read_text()
        assert "dc:description" in xmp and "dc:subject" in xmp
        srt = memo.with_name("memo.en.srt").read_text()
        assert "-->" in srt and memo.with_name("memo.en.vtt").read_text().startswith("WEBVTT")
        # .srt and .vtt ask the same request: one line, one answer, billed once.
        assert emu.stats()["batch_requests"] == 2 and len(r.billed) == 2
        assert "generate" not in emu.stats()["requests"]
        await r.close()
    asyncio.run(go())


def test_a_file_changed_while_its_job_runs_drops_that_answer(tmp_path, emu) -> None:  # noqa: ANN001
    clock = Clock()
    a, b = _images(tmp_path, 2)

    async def go() -> None:
        r = Run(tmp_path, emu, clock, mode="always")
        await r.sync()
        a.write_bytes(png_bytes(100, 80, seed=99))  # new bytes while the job runs
        await r.sync()  # the new content is a new output: a job of its own
        assert emu.batches.created == 2
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        assert "100×80" in _sidecar(a).read_text()  # the old bytes' answer was dropped
        assert _sidecar(b).exists()
        states = sorted(i.state for j in r.store.jobs(open_only=False)
                        for i in r.store.job_items(j.key))
        assert states == ["answered", "answered", "dropped"]
        assert "generate" not in emu.stats()["requests"]
        await r.close()
    asyncio.run(go())


def test_a_create_refused_until_max_wait_goes_interactive(tmp_path, emu) -> None:  # noqa: ANN001
    clock = Clock()
    imgs = _images(tmp_path, 2)

    async def go() -> None:
        emu.add_fault(Fault(status=429, match="batch.create", times=None))
        r = Run(tmp_path, emu, clock, mode="always", max_wait="1h")
        await r.sync()
        await r.engine.batcher.wait()
        (job,) = r.store.jobs(open_only=False)
        assert job.message == "not created within max_wait" and emu.batches.created == 0
        await r.engine.run(until_idle=True)
        assert all(_sidecar(p).exists() for p in imgs)
        assert emu.stats()["requests"]["generate"] == 2
        await r.close()
    asyncio.run(go())


def test_two_looks_at_a_job_being_created_create_it_once(tmp_path, emu) -> None:  # noqa: ANN001
    # The dispatcher's flush creates its jobs while the daemon's batch task may find
    # the same job due: both looking at once must not create it twice (paid twice).
    clock = Clock()
    _images(tmp_path, 2)

    async def go() -> None:
        emu.add_fault(Fault(status=503, match="batch.create", times=5))
        r = Run(tmp_path, emu, clock, mode="always")
        await r.sync()
        (job,) = r.store.jobs()
        assert job.state == batching.CREATING and emu.batches.created == 0
        emu.clear_faults()
        advance(clock, emu, 3600.0)  # the job is due again
        await asyncio.gather(r.engine.batcher.tick(), r.engine.batcher.tick())
        assert emu.batches.created == 1
        await r.close()
    asyncio.run(go())


def test_a_changed_file_drops_only_its_own_answer_not_its_twins(tmp_path, emu) -> None:  # noqa: ANN001
    # Two paths with the same bytes share one request line of a job; when one changes
    # while the job runs, the other keeps its answer (no second job, nothing interactive).
    clock = Clock()
    (a,) = _images(tmp_path, 1)
    twin = a.with_name("twin.png")
    twin.write_bytes(a.read_bytes())

    async def go() -> None:
        r = Run(tmp_path, emu, clock, mode="always", min_outputs=1)
        await r.sync()
        (job,) = r.store.jobs()
        assert len({i.request_key for i in r.store.job_items(job.key)}) == 1
        a.write_bytes(png_bytes(100, 80, seed=99))  # new bytes while the job runs
        await r.sync()
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        assert "100×80" in _sidecar(a).read_text()
        assert _sidecar(twin).exists()
        assert emu.batches.created == 2  # the changed file's job; the twin's came once
        assert "generate" not in emu.stats()["requests"]
        await r.close()
    asyncio.run(go())


def test_a_finished_jobs_input_file_is_deleted_with_the_other_doomed_files(tmp_path, emu) -> None:  # noqa: ANN001
    clock = Clock()
    _images(tmp_path, 2)

    def inputs() -> list[str]:
        return [f["name"] for f in emu.list_files()
                if str(f.get("displayName", "")).startswith("mediasync-batch:")]

    async def go() -> None:
        r = Run(tmp_path, emu, clock, mode="always")
        await r.sync()
        assert len(inputs()) == 1
        # The service fails the first deletes (more than one call retries, its waits
        # injected): the input is deleted later, not dropped.
        r.client.retry = RetryPolicy(max_attempts=2, sleep=_no_wait)
        emu.add_fault(Fault(status=503, match="delete", times=6))
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        for _ in range(6):
            await r.engine.sweep()
        assert inputs() == [] and r.store.doomed() == []
        await r.close()
    asyncio.run(go())


def test_a_succeeded_jobs_results_not_downloaded_once_are_fetched_later(tmp_path, emu) -> None:  # noqa: ANN001
    # The job succeeded (paid); its results file answered a 503 once, after max_wait
    # had passed: the download is tried again, the answers are not thrown away.
    clock = Clock()
    imgs = _images(tmp_path, 2)

    async def go() -> None:
        r = Run(tmp_path, emu, clock, mode="always", max_wait="2h")
        r.client.retry = RetryPolicy(max_attempts=1)  # one try: nothing to wait for
        await r.sync()
        advance(clock, emu, 3 * 3600)  # long succeeded; max_wait passed meanwhile
        emu.add_fault(Fault(status=503, match="download", times=1))
        await r.engine.batcher.tick()
        assert r.store.jobs(), "the job ended on a transient download error"
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        assert all(_sidecar(p).exists() for p in imgs)
        assert "generate" not in emu.stats()["requests"]
        await r.close()
    asyncio.run(go())


def test_a_batch_answer_is_kept_for_the_same_bytes_at_another_path(tmp_path, emu) -> None:  # noqa: ANN001
    # A job answered photo.png; a copy of it that appears later is written from that
    # answer (the answer book), not gathered into a second job that pays again.
    clock = Clock()
    (a,) = _images(tmp_path, 1)

    async def go() -> None:
        r = Run(tmp_path, emu, clock, mode="always", min_outputs=1)
        await r.sync()
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        assert _sidecar(a).exists() and emu.batches.created == 1
        later = a.with_name("later.png")
        later.write_bytes(a.read_bytes())
        await r.sync()
        assert _sidecar(later).read_text() == _sidecar(a).read_text()
        assert emu.batches.created == 1  # no second job for the same request
        assert "generate" not in emu.stats()["requests"]
        (out,) = [o for o in r.store.all_outputs() if o.path == str(later)]
        assert "paid once" in (out.message or "")
        await r.close()
    asyncio.run(go())


def test_an_answer_cut_by_the_old_limit_is_not_given_again_after_it_is_raised(
        tmp_path, emu) -> None:  # noqa: ANN001
    # 12 output tokens cut the caption (incomplete, nothing written); the owner raises
    # the limit: the item answered under the old knobs is not the answer now.
    clock = Clock()
    (a,) = _images(tmp_path, 1)
    cut = {"max_output_tokens": 12, "thinking_budget": 0}

    async def go() -> None:
        r = Run(tmp_path, emu, clock, knobs=cut, mode="always", min_outputs=1)
        await r.sync()
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        ((outcome, message),) = [(o.outcome, o.message) for o in r.store.all_outputs()]
        assert outcome == "incomplete" and "max_output_tokens" in (message or "")
        assert not _sidecar(a).exists()
        await r.close()
        r = Run(tmp_path, emu, clock, knobs={**cut, "max_output_tokens": 400}, mode="always",
                min_outputs=1)
        await r.sync()
        assert emu.batches.created == 2  # asked again, under the new limit
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        assert _sidecar(a).read_text().rstrip().endswith("”")  # the whole caption
        assert [o.outcome for o in r.store.all_outputs()] == ["written"]
        await r.close()
    asyncio.run(go())


@pytest.mark.parametrize("end", ["CANCELLED", "FAILED", "PARTIALLY_SUCCEEDED"])
def test_an_ended_jobs_results_file_is_read_whatever_its_state(tmp_path, emu, end) -> None:  # noqa: ANN001
    # Two of three were answered before the job ended: those answers are paid for and
    # written; only the third is asked interactively.
    clock = Clock()
    imgs = _images(tmp_path, 3)

    async def go() -> None:
        r = Run(tmp_path, emu, clock, mode="always")
        await r.sync()
        (job,) = r.store.jobs()
        emu.batches.end((job.name or "").removeprefix("batches/"), f"BATCH_STATE_{end}",
                        answered=2)
        await r.engine.batcher.wait()
        await r.engine.run(until_idle=True)
        assert all(_sidecar(p).exists() for p in imgs)
        assert emu.stats()["requests"]["generate"] == 1  # the one the job did not answer
        assert sorted(t for _, t in r.billed) == ["batch", "batch", "standard"]
        (ended,) = r.store.jobs(open_only=False)
        assert ended.message.startswith(f"{end.lower()}: 2 answered, 0 errors")
        await r.close()
    asyncio.run(go())


def test_a_refused_create_holds_no_upload_and_waits_outside_the_call(tmp_path, emu) -> None:  # noqa: ANN001
    # The live create answers 429 without RetryInfo when the Batch API's own limits are
    # reached: that is its class's limit, not the uploads' and listings', and the
    # batcher plans the next try (a retry in the call held the dispatcher meanwhile).
    from mediasync.gemini.pacing import BATCHES, FILES, Budgets

    clock = Clock()
    imgs = _images(tmp_path, 2)

    async def go() -> None:
        emu.add_fault(Fault(status=429, match="batch.create", times=None))
        r = Run(tmp_path, emu, clock, mode="always")
        budgets = Budgets(clock=clock, sleep=r.sleep)
        r.client.transport.budgets = budgets
        await r.sync()
        assert emu.stats()["requests"]["batch.create"] == 1  # never retried in the call
        assert budgets.refused == {BATCHES: 1}
        assert budgets.paused(FILES) is None
        (job,) = r.store.jobs()
        assert job.state == batching.CREATING and "429" in (job.message or "")
        more = _images(tmp_path, 1, seed=50)  # uploads go on meanwhile
        await r.engine.scan()
        await r.engine.run(until_idle=True)
        # The three images and each job's JSONL input (the new one's job is refused too).
        assert emu.stats()["uploads_started"] == len(imgs) + len(more) + 2
        assert emu.stats()["requests"]["batch.create"] == 2 and budgets.paused(FILES) is None
        await r.close()
    asyncio.run(go())
