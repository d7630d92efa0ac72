"""When a notification is sent (issue 19): once per subject, gathered, held; time injected."""

from __future__ import annotations

from datetime import datetime

from mediasync.app.notify import HOLD, Notifications, digest
from mediasync.config.observe import NotifyConfig, parse_notify
from mediasync.report.snapshot import Snapshot, _summarise
from mediasync.report.status import FileReport

T0 = datetime(2026, 12, 3, 12, 0).timestamp()


def snap(reports=(), *, halted=None, unavailable=None, paused=(), reached=None) -> Snapshot:
    s = Snapshot(taken_at=T0, took=0.0, folders=["/m"], reports=list(reports), halted=halted,
                 unavailable=dict(unavailable or {}),
                 quota={"paused": list(paused), "costs": {},
                        "cap": {"reached": reached, "today": {"tokens": 5, "cost_usd": 2.5},
                                "max_daily_cost": 2.0, "max_daily_tokens": None}},
                 remote_bytes=0, store_bytes=0)
    _summarise(s)
    return s


def failed(i: int) -> FileReport:
    return FileReport(path=f"/m/f{i:04d}.jpg", folder="/m", state="failed",
                      message="the service could not process it: FAILED")


def waiting(i: int) -> FileReport:
    return FileReport(path=f"/m/w{i:04d}.jpg", folder="/m", state="waiting",
                      message="upload failed, will retry: 503 UNAVAILABLE")


def notes(**kw) -> Notifications:
    return Notifications(parse_notify({"urls": [], "gather": "30s", **kw}))


def test_one_failure_is_sent_once_naming_the_file_after_the_gather_time():
    n = notes()
    s = snap([failed(1)])
    assert n.observe(s, T0) == []  # gathering: more may come
    [m] = n.observe(s, T0 + 30)
    assert m.event == "file_failed" and "/m/f0001.jpg" in m.body and "FAILED" in m.body
    assert m.title == "mediasync: a file failed for good"
    n.sent(m, T0 + 30)
    assert n.observe(s, T0 + 3600) == []  # still failed: told already


def test_a_thousand_failures_make_one_message_with_a_count():
    n = notes()
    burst = [failed(i) for i in range(1000)]
    for k in range(0, 1000, 100):  # they appear over ten snapshots, 5 s apart
        assert n.observe(snap(burst[:k + 100]), T0 + k / 20) == []
    [m] = n.observe(snap(burst), T0 + 50 + 30)
    assert m.title == "mediasync: 1000 files failed for good"
    assert "… and 990 more" in m.body and m.body.count("\n") == 10
    n.sent(m, T0 + 80)
    assert n.observe(snap(burst), T0 + 10_000) == []


def test_a_storm_of_transient_errors_sends_nothing():
    n = notes()
    for k in range(100):
        assert n.observe(snap([waiting(i) for i in range(500)]), T0 + k * 5) == []


def test_later_failures_are_held_and_grouped():
    n = notes()
    [m] = n.observe(snap([failed(1)]), T0 + 30) or n.observe(snap([failed(1)]), T0 + 60)
    n.sent(m, T0 + 60)
    more = snap([failed(i) for i in range(1, 6)])
    assert n.observe(more, T0 + 120) == [] and n.observe(more, T0 + 200) == []  # held
    [m2] = n.observe(more, T0 + 60 + HOLD)
    assert m2.title == "mediasync: 4 files failed for good"


def test_a_healed_file_that_fails_again_is_told_again_and_the_told_set_survives_a_restart():
    n = notes(gather="0s")
    [m] = n.observe(snap([failed(1)]), T0)
    n.sent(m, T0)
    told = n.told()
    assert told == {"file_failed": [digest("/m/f0001.jpg")]}
    again = notes(gather="0s")
    again.restore(told)
    assert again.observe(snap([failed(1)]), T0 + 1) == []  # a restart does not repeat it
    assert n.observe(snap([]), T0 + 2) == [] and n.told() == {}  # healed: forgotten
    [m3] = n.observe(snap([failed(1)]), T0 + HOLD + 3)
    assert "/m/f0001.jpg" in m3.body


def test_undelivered_messages_are_kept_and_tried_again():
    n = notes(gather="0s")
    [m] = n.observe(snap([failed(1)]), T0)
    n.failed(m, T0)
    assert n.observe(snap([failed(1)]), T0 + 10) == []
    [again] = n.observe(snap([failed(1)]), T0 + 301)
    assert again.subjects == m.subjects


def test_halt_quota_and_cap_events():
    n = notes(gather="0s")
    pause = {"model": "gemini-2.5-flash", "quota": "daily quota of 250 requests",
             "message": "daily quota of 250 requests for gemini-2.5-flash used; resuming"}
    cap = {"model": "all models", "quota": "daily cost cap of $2.00", "message": "cap"}
    got = n.observe(snap(halted="the API key was refused (API_KEY_INVALID)", paused=[pause, cap],
                         reached="daily cost cap of $2.00"), T0)
    by = {m.event: m for m in got}
    assert set(by) == {"halted", "quota_used", "cap_reached"}
    assert "API_KEY_INVALID" in by["halted"].body
    assert "gemini-2.5-flash" in by["quota_used"].body
    assert "daily cost cap of $2.00" in by["cap_reached"].body and "$2.50" in by["cap_reached"].body


def test_a_folder_is_told_only_after_unavailable_after():
    n = notes(gather="0s", unavailable_after="10m")
    away = snap(unavailable={"/m": "is not mounted"})
    assert n.observe(away, T0) == [] and n.observe(away, T0 + 599) == []
    [m] = n.observe(away, T0 + 600)
    assert m.event == "folder_unavailable" and "/m is not mounted" in m.body
    # back within the time: nothing; away again: the clock starts over
    n2 = notes(gather="0s", unavailable_after="10m")
    n2.observe(away, T0)
    n2.observe(snap(), T0 + 300)
    assert n2.observe(away, T0 + 700) == []


def test_only_the_events_named_in_on_and_the_daily_summary_at_its_time():
    n = notes(gather="0s", on=["daily_summary"], summary_at="13:00")
    s = snap([failed(1)])
    assert n.observe(s, T0) == []  # 12:00: not yet, and file_failed is not in `on`
    [m] = n.observe(s, T0 + 3600)
    assert m.event == "daily_summary" and "1 failed" in m.body
    assert n.observe(s, T0 + 3700) == []  # once a day


def test_default_events_leave_out_the_summary():
    assert NotifyConfig().on == {"file_failed", "halted", "quota_used", "cap_reached",
                                 "folder_unavailable", "store_full", "model_missing"}


def test_a_full_store_and_a_model_not_served_are_told_once_each():
    from mediasync.rules.failures import STORAGE_FULL

    n = notes(gather="0s")
    full = [FileReport(path=f"/m/v{i}.mp4", folder="/m", state="waiting",
                       message=f"{STORAGE_FULL}; next try 2026-12-03 12:10 UTC")
            for i in range(3)]
    s = snap([*full, waiting(1)])
    s.held = {"model:gemini-2.0-pro": "model gemini-2.0-pro is not available: set api.model"}
    by = {m.event: m for m in n.observe(s, T0)}
    assert set(by) == {"store_full", "model_missing"}
    assert "3 file(s) wait for room" in by["store_full"].body
    assert "gemini-2.0-pro is not available: set api.model" in by["model_missing"].body
    for m in by.values():
        n.sent(m, T0)
    assert n.observe(s, T0 + 60) == []  # told once, while it lasts


def test_a_sender_tells_a_down_service_once_and_counts_a_message_sent_if_one_url_took_it(caplog):
    import asyncio
    import json
    import logging
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mediasync.app.notify import Sender

    got = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    up = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=up.serve_forever, daemon=True).start()
    down = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    dead = down.server_address[1]
    down.server_close()  # nobody listens there
    try:
        caplog.set_level(logging.INFO, logger="mediasync")
        alive = Sender([f"json://127.0.0.1:{up.server_address[1]}/a",
                        f"json://user:secretpw@127.0.0.1:{dead}/b"], timeout=10)
        results = [asyncio.run(alive.send(f"t{i}", "body")) for i in range(3)]
        nobody = Sender([f"json://127.0.0.1:{dead}/b"], timeout=10)
        alone = asyncio.run(nobody.send("t", "body"))
    finally:
        up.shutdown()
        up.server_close()
    assert results == [True, True, True] and [g["title"] for g in got] == ["t0", "t1", "t2"]
    assert alone is False
    lines = [r.getMessage() for r in caplog.records if "could not be sent" in r.getMessage()]
    assert len(lines) == 2  # once per sender, not per message
    assert all("secretpw" not in line for line in lines)
