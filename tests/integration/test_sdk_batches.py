"""The official google-genai SDK's batches and files.download against the emulator."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from mediasync.emulator import Emulator, EmulatorConfig
from mediasync.emulator.faults import Fault
from mediasync.media.samples import png_bytes as png

genai = pytest.importorskip("google.genai")
from google.genai import errors, types  # noqa: E402


@pytest.fixture()
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(batch_pending=10, batch_duration=60)) as e:
        yield e


def sdk(emu: Emulator):  # -> genai.Client
    return genai.Client(
        api_key="k", http_options=types.HttpOptions(base_url=emu.base_url, api_version="v1beta"))


def _image(client, n: int) -> types.File:  # noqa: ANN001
    return client.files.upload(file=io.BytesIO(png(64 + n, 48)),
                               config={"mime_type": "image/png"})


def test_sdk_batch_inline_states_over_time_shuffled_without_metadata(emu: Emulator) -> None:
    client = sdk(emu)
    files = [_image(client, n) for n in range(6)]
    job = client.batches.create(
        model="gemini-2.5-flash",
        src=[{"contents": [{"parts": [{"file_data": {"file_uri": f.uri, "mime_type": "image/png"}},
                                      {"text": f"n={n}"}], "role": "user"}],
              "metadata": {"n": str(n)}} for n, f in enumerate(files)],
        config={"display_name": "inline-job"})
    assert job.name.startswith("batches/") and job.display_name == "inline-job"
    assert job.state == types.JobState.JOB_STATE_PENDING
    emu.clock.advance(30)
    assert client.batches.get(name=job.name).state == types.JobState.JOB_STATE_RUNNING
    emu.clock.advance(31)
    done = client.batches.get(name=job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    answers = done.dest.inlined_responses
    assert len(answers) == 6 and all(a.metadata is None for a in answers)
    order = [int(a.response.text.rsplit("n=", 1)[1].rstrip("”")) for a in answers]
    assert sorted(order) == list(range(6))
    # Shuffled: over a few jobs, not always request order (6! orders: one in 720).
    assert order != list(range(6)) or _another_order(client, emu, files)


def _another_order(client, emu: Emulator, files) -> bool:  # noqa: ANN001
    for _ in range(5):
        job = client.batches.create(model="gemini-2.5-flash", src=[
            {"contents": [{"parts": [{"file_data": {"file_uri": f.uri}}, {"text": f"n={n}"}]}]}
            for n, f in enumerate(files)])
        emu.clock.advance(61)
        got = client.batches.get(name=job.name).dest.inlined_responses
        if [int(a.response.text.rsplit("n=", 1)[1].rstrip("”")) for a in got] != list(range(6)):
            return True
    return False


def test_sdk_batch_from_a_jsonl_file_list_download_delete(emu: Emulator, tmp_path) -> None:  # noqa: ANN001
    client = sdk(emu)
    files = [_image(client, n) for n in range(3)]
    lines = [json.dumps({"key": f"k{n}", "request": {"contents": [{"parts": [
        {"file_data": {"file_uri": f.uri, "mime_type": "image/png"}}, {"text": f"n={n}"}]}]}})
        for n, f in enumerate(files)]
    # One request names a file that is not there: its line is an error, the others answer.
    lines.append(json.dumps({"key": "gone", "request": {"contents": [{"parts": [
        {"file_data": {"file_uri": "files/nosuchfile"}}, {"text": "x"}]}]}}))
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    uploaded = client.files.upload(file=str(src), config={"mime_type": "application/jsonl"})
    job = client.batches.create(model="gemini-2.5-flash", src=uploaded.name,
                                config={"display_name": "file-job"})
    listed = list(client.batches.list())
    assert [j.name for j in listed] == [job.name]
    emu.clock.advance(61)
    done = client.batches.get(name=job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    result = done.dest.file_name
    assert result.startswith("files/batch-")
    with pytest.raises(errors.ClientError) as refused:
        client.files.get(name=result)  # files.get refuses the long id
    assert refused.value.code == 400
    data = client.files.download(file=result)
    rows = [json.loads(line) for line in data.decode().splitlines()]
    by_key = {r["key"]: r for r in rows}
    assert set(by_key) == {"k0", "k1", "k2", "gone"}
    assert by_key["gone"]["error"]["code"] == 403
    for n in range(3):
        assert by_key[f"k{n}"]["response"]["candidates"][0]["content"]["parts"][0]["text"] \
            .endswith(f"n={n}”")
    client.batches.delete(name=job.name)
    assert list(client.batches.list()) == []
    with pytest.raises(errors.ClientError) as gone:
        client.batches.get(name=job.name)
    assert gone.value.code == 404


def test_sdk_batch_stats_cancel_expire_and_a_429_create(emu: Emulator) -> None:
    client = sdk(emu)
    f = _image(client, 0)
    src = [{"contents": [{"parts": [{"file_data": {"file_uri": f.uri}}, {"text": "x"}]}]}] * 4
    emu.add_fault(Fault(status=429, match="batch.create"))
    with pytest.raises(errors.ClientError) as refused:
        client.batches.create(model="gemini-2.5-flash", src=src)
    assert refused.value.code == 429 and not refused.value.details["error"].get("details")
    assert emu.batches.created == 0
    a = client.batches.create(model="gemini-2.5-flash", src=src)
    b = client.batches.create(model="gemini-2.5-flash", src=src)
    emu.clock.advance(35)  # half-way through the running part
    raw = emu.batches.get(a.name.removeprefix("batches/"), "v1beta")
    stats = raw["metadata"]["batchStats"]
    assert stats["requestCount"] == "4" and all(isinstance(v, str) for v in stats.values())
    assert "failedRequestCount" not in stats  # zero counts omitted (wire/40)
    client.batches.cancel(name=a.name)
    assert client.batches.get(name=a.name).state == types.JobState.JOB_STATE_CANCELLED
    emu.batches.end(b.name.removeprefix("batches/"), "BATCH_STATE_EXPIRED")
    expired = client.batches.get(name=b.name)
    assert expired.state == types.JobState.JOB_STATE_EXPIRED and expired.dest is None


def test_a_job_open_48_hours_expires_and_a_lost_answer_still_made_the_job(emu: Emulator) -> None:
    client = sdk(emu)
    f = _image(client, 0)
    src = [{"contents": [{"parts": [{"file_data": {"file_uri": f.uri}}, {"text": "x"}]}]}]
    emu.batches.duration = 60 * 3600
    emu.add_fault(Fault(kind="lost_answer"))
    with pytest.raises(Exception):  # noqa: B017 - the connection drops, whatever the SDK says
        client.batches.create(model="gemini-2.5-flash", src=src, config={"display_name": "k1"})
    (job,) = list(client.batches.list())
    assert job.display_name == "k1"
    emu.clock.advance(48 * 3600)
    assert client.batches.get(name=job.name).state == types.JobState.JOB_STATE_EXPIRED
