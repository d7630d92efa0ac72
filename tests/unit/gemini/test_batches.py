"""The Batch API's answers read leniently (wire/40, wire/19, files-api.md "Batch mode")."""

from __future__ import annotations

import json

from mediasync.gemini.batches import BatchJob, parse_results, state_name
from tests.wire_samples import body


def test_wire_40_running_job_counts_as_strings() -> None:
    (op,) = body(40)["operations"]
    job = BatchJob.from_json(op)
    assert job.name == "batches/1234567890" and job.state == "RUNNING" and not job.ended
    assert job.stats == {"requestCount": 4, "successfulRequestCount": 1,
                         "pendingRequestCount": 3}
    assert job.model == "gemini-2.5-flash" and job.display_name == "my-batch-job"
    assert job.create_time is not None and job.responses_file is None


def test_output_read_from_response_or_metadata_output() -> None:
    out = {"responsesFile": "files/batch-abc"}
    meta = {"state": "BATCH_STATE_SUCCEEDED"}
    a = BatchJob.from_json({"name": "batches/1", "done": True, "metadata": meta, "response": out})
    b = BatchJob.from_json({"name": "batches/1", "done": True, "metadata": {**meta,
                                                                            "output": out}})
    assert a.responses_file == b.responses_file == "files/batch-abc" and a.ended and b.ended
    inline = BatchJob.from_json({"name": "batches/2", "metadata": {
        "state": "JOB_STATE_SUCCEEDED",
        "output": {"inlinedResponses": {"inlinedResponses": [{"response": {}}]}}}})
    assert inline.inlined == [{"response": {}}] and inline.state == "SUCCEEDED"


def test_state_spellings_and_missing_pieces() -> None:
    assert state_name("BATCH_STATE_EXPIRED") == state_name("expired") == "EXPIRED"
    assert state_name(None) is None
    bare = BatchJob.from_json({"name": "batches/3", "done": True})
    assert bare.state is None and bare.ended and bare.stats == {}


def test_results_by_key_errors_and_unreadable_lines() -> None:
    lines = [json.dumps(item) for item in body(19)]  # key order varies (wire/19)
    lines.append(json.dumps({"error": {"code": 403, "status": "PERMISSION_DENIED",
                                       "message": "no file"}, "key": "gone"}))
    lines.append('{"key": "cut", "respo')
    lines.append(json.dumps({"response": {}}))  # no key: cannot be matched
    got = parse_results(("\n".join(lines) + "\n").encode())
    assert set(got.answers) == {"request_1", "request_2"}
    assert got.answers["request_1"].text.startswith("AI learns")
    assert got.answers["request_2"].usage.thoughts_tokens == 1180
    assert got.errors["gone"].code == 403 and got.errors["gone"].file_gone
    assert got.unreadable == 2


def test_an_error_line_as_a_bare_rpc_status_is_judged_as_its_http_answer() -> None:
    # The REST reference's Status carries a google.rpc.Code (7, 13, 14…), no status
    # name: 13 is an internal error (transient), not a verdict on the file.
    from mediasync.rules.failures import classify

    lines = [json.dumps({"key": k, "error": {"code": c, "message": m}}) for k, c, m in (
        ("gone", 7, "You do not have permission to access the File x or it may not exist."),
        ("busy", 13, "Internal error encountered."),
        ("odd", 42, "?"))]
    got = parse_results(("\n".join(lines) + "\n").encode()).errors
    assert (got["gone"].code, got["gone"].status) == (403, "PERMISSION_DENIED")
    assert got["gone"].file_gone
    assert (got["busy"].code, got["busy"].status) == (500, "INTERNAL")
    assert classify(got["busy"]) != "permanent" and classify(got["odd"]) != "permanent"
