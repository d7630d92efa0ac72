"""Prometheus metrics from the last snapshot and the traffic counters (issue 19).

A custom collector in a registry of its own (never prometheus_client's global one):
each scrape reads the snapshot the daemon already holds, so a scrape costs no
reading of the store. Names follow Prometheus's rules: the ``mediasync_`` prefix,
base units (seconds, bytes; dollars for money), ``_total`` on counters.

What survives a restart: everything read from the store (files, sidecars, tokens,
cost, answered generations from the usage ledger, pauses). What starts again at 0
with each process (Prometheus's ``rate()`` takes that in its stride): uploads and
their bytes, renewals, generations refused or failed, 429s per quota (``Traffic``).
"""

from __future__ import annotations

import math
import platform
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from mediasync import __version__
from mediasync.report.snapshot import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATES = ("synced", "pending", "uploading", "processing", "waiting", "failed")


@dataclass
class Traffic:
    """Counts of this process's API traffic (app/traffic.py keeps them; reset on restart)."""

    started_at: float
    uploads: int = 0  # finalized uploads (first copies and renewals)
    upload_bytes: int = 0  # bytes the service acknowledged
    renewals: int = 0  # fresh copies that replaced a live one
    generations: Counter[tuple[str, str]] = field(default_factory=Counter)  # (model, outcome)
    refusals: Counter[tuple[str, str]] = field(default_factory=Counter)  # (model|files, quota)
    last_api_success: float | None = None
    last_listing: float | None = None  # the last page of a successful files.list
    readings: int = 0  # snapshots of the store read (app/observe.py)


class SnapshotCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot], traffic: Callable[[], Traffic],
                 clock: Callable[[], float]) -> None:
        self._snapshot = snapshot
        self._traffic = traffic
        self._clock = clock

    def describe(self) -> list[Metric]:
        return []  # no eager collect() at registration: the snapshot may not exist yet

    def collect(self) -> Iterator[Metric]:
        s, t, now = self._snapshot(), self._traffic(), self._clock()
        info = InfoMetricFamily("mediasync_build", "mediasync's version and Python's")
        info.add_metric([], {"version": __version__, "python": platform.python_version()})
        yield info
        yield from _files(s)
        yield _generations(s, t)
        yield from _usage(s)
        yield from _traffic(t, now)
        yield from _state(s, t, now)


def _files(s: Snapshot) -> Iterator[Metric]:
    files = GaugeMetricFamily("mediasync_files", "Files per folder and state, as `mediasync "
                              "status` decodes them", labels=["folder", "state"])
    for folder in s.per_folder:
        counts = s.per_folder[folder]
        for state in sorted(set(STATES) | set(counts)):
            files.add_metric([folder, state], counts.get(state, 0))
    yield files
    outputs = GaugeMetricFamily("mediasync_sidecars", "Sidecars per folder and outcome",
                                labels=["folder", "outcome"])
    for folder, counts in s.outputs.items():
        for outcome, n in sorted(counts.items()):
            outputs.add_metric([folder, outcome], n)
    yield outputs
    away = GaugeMetricFamily("mediasync_folder_unavailable", "1 while a folder (or a disk "
                             "mounted inside one) cannot be read", labels=["folder"])
    for folder in sorted(set(s.folders) | set(s.unavailable)):
        away.add_metric([folder], 1 if folder in s.unavailable else 0)
    yield away


def _generations(s: Snapshot, t: Traffic) -> Metric:
    """answered: every 200, from the usage ledger (survives restarts; blocked answers
    too: see mediasync_sidecars); refused (429) and error: since start."""
    gens = CounterMetricFamily("mediasync_generations", "generateContent calls by model and "
                               "outcome: answered (usage ledger), refused (429) and error "
                               "(other failures; these two since start)",
                               labels=["model", "outcome"])
    for model, spans in sorted(s.quota.get("costs", {}).items()):
        gens.add_metric([model, "answered"], spans["total"]["requests"])
    for (model, outcome), n in sorted(t.generations.items()):
        gens.add_metric([model, outcome], n)
    return gens


def _usage(s: Snapshot) -> Iterator[Metric]:
    """From the usage ledger (the store): survives restarts."""
    tokens = CounterMetricFamily("mediasync_tokens", "Tokens billed, by model and kind "
                                 "(thoughts are billed as output)", labels=["model", "kind"])
    cost = CounterMetricFamily("mediasync_estimated_cost_dollars", "Estimated cost in US "
                               "dollars at [prices] (0 where no price is known)",
                               labels=["model"])
    today_tokens = GaugeMetricFamily("mediasync_tokens_today", "Tokens billed today "
                                     "(Pacific day), all models", labels=["kind"])
    for model, spans in sorted(s.quota.get("costs", {}).items()):
        total = spans["total"]
        for kind in ("prompt", "output", "thoughts"):
            tokens.add_metric([model, kind], total[kind])
        cost.add_metric([model], total["cost_usd"] or 0.0)
    cap = s.quota.get("cap") or {}
    today = cap.get("today") or {}
    for kind in ("prompt", "output", "thoughts"):
        today_tokens.add_metric([kind], today.get(kind, 0))
    yield tokens
    yield cost
    spent = GaugeMetricFamily("mediasync_estimated_cost_today_dollars", "Estimated cost "
                              "today (Pacific day)")
    spent.add_metric([], today.get("cost_usd") or 0.0)
    yield spent
    yield today_tokens
    for name, key, what in (("mediasync_daily_cost_cap_dollars", "max_daily_cost", "dollars"),
                            ("mediasync_daily_token_cap", "max_daily_tokens", "tokens")):
        if cap.get(key) is not None:
            g = GaugeMetricFamily(name, f"limits.{key}: the daily cap in {what}")
            g.add_metric([], cap[key])
            yield g
    reached = GaugeMetricFamily("mediasync_daily_cap_reached", "1 once today's spend "
                                "reached the daily cap")
    reached.add_metric([], 1 if cap.get("reached") else 0)
    yield reached
    pauses = GaugeMetricFamily("mediasync_quota_paused", "1 per active quota pause, by model "
                               "and what was used up", labels=["model", "quota"])
    resume = GaugeMetricFamily("mediasync_quota_resume_timestamp_seconds", "When a paused "
                               "model resumes (Unix time)", labels=["model"])
    for p in s.quota.get("paused", []):
        pauses.add_metric([str(p.get("model")), str(p.get("quota"))], 1)
        resume.add_metric([str(p.get("model"))], float(p.get("resume_at") or 0))
    yield pauses
    yield resume


def _traffic(t: Traffic, now: float) -> Iterator[Metric]:
    uploads = CounterMetricFamily("mediasync_uploads", "Uploads finalized since start")
    uploads.add_metric([], t.uploads)
    yield uploads
    sent = CounterMetricFamily("mediasync_upload_bytes", "Upload bytes the service "
                               "acknowledged since start")
    sent.add_metric([], t.upload_bytes)
    yield sent
    renewals = CounterMetricFamily("mediasync_renewals", "Remote copies replaced by a fresh "
                                   "one before expiry, since start")
    renewals.add_metric([], t.renewals)
    yield renewals
    refused = CounterMetricFamily("mediasync_quota_refusals", "429 answers since start, by "
                                  "model (or files) and quota (rpm, tpm, rpd, storage, other, "
                                  "unnamed)", labels=["model", "quota"])
    for (model, quota), n in sorted(t.refusals.items()):
        refused.add_metric([model, quota], n)
    yield refused
    start = GaugeMetricFamily("mediasync_start_time_seconds", "When this process started "
                              "(Unix time)")
    start.add_metric([], t.started_at)
    yield start


def _state(s: Snapshot, t: Traffic, now: float) -> Iterator[Metric]:
    def gauge(name: str, doc: str, value: float) -> Metric:
        g = GaugeMetricFamily(name, doc)
        g.add_metric([], value)
        return g

    yield gauge("mediasync_remote_store_bytes", "Bytes of mediasync's live copies on the "
                "service (the project holds at most 20 GB)", s.remote_bytes)
    yield gauge("mediasync_state_database_bytes", "Size of state.db with its WAL",
                s.store_bytes)
    yield gauge("mediasync_halted", "1 while API calls are halted (see /healthz for why)",
                1 if s.halted else 0)
    nan = math.nan
    yield gauge("mediasync_last_listing_age_seconds", "Seconds since the last successful "
                "listing of the remote files (NaN before the first)",
                now - t.last_listing if t.last_listing else nan)
    yield gauge("mediasync_last_api_success_timestamp_seconds", "When an API call last "
                "succeeded (Unix time; NaN before the first)", t.last_api_success or nan)
    yield gauge("mediasync_snapshot_age_seconds", "Age of the reading of the store these "
                "figures come from", max(0.0, now - s.taken_at))
    yield gauge("mediasync_snapshot_build_seconds", "How long the last reading of the store "
                "took", s.took)
    readings = CounterMetricFamily("mediasync_snapshot_readings", "Readings of the store for "
                                   "the page, /metrics and notifications, since start")
    readings.add_metric([], t.readings)
    yield readings


def registry(snapshot: Callable[[], Snapshot], traffic: Callable[[], Traffic],
             clock: Callable[[], float]) -> CollectorRegistry:
    """A registry of its own holding only the snapshot collector."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(SnapshotCollector(snapshot, traffic, clock))
    return reg


def exposition(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)
