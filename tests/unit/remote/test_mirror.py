"""The Mirror composes the parts around one context: promoting a processed copy
(ACTIVE serves and replaces the old one, FAILED is a verdict unless a copy still
serves), the new copy's expiry told to ``on_copy``, and a reload seen by every part."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from mediasync.gemini import File, GeminiClient
from mediasync.remote.mirror import Mirror
from mediasync.rules import failures
from tests.unit.remote.parts import HOUR, NOWHERE, T0

A = "a" * 64


def _mirror(ctx, told: list[float]) -> Mirror:
    return Mirror(ctx.client, ctx.store, renew_before=ctx.renew_before,
                  upload_slots=ctx.upload_slots, clock=ctx.clock, sleep=ctx.sleep, fs=ctx.fs,
                  instance=ctx.instance, on_copy=told.append, jitter=lambda: 0.5)


def _file(name: str, state: str, expires: float | None = None) -> File:
    at = datetime.fromtimestamp(expires, UTC) if expires is not None else None
    return File(name, state=state, expiration_time=at, uri=f"https://x/{name}",
                error_message="bad bytes" if state == "FAILED" else None)


def test_an_active_copy_replaces_the_old_one_and_its_expiry_is_told(ctx, add_copy) -> None:
    told: list[float] = []
    m = _mirror(ctx, told)
    add_copy(A, T0 + 2 * HOUR, name="files/old")
    m.promote(A, _file("files/new", "ACTIVE", T0 + 48 * HOUR))
    c = ctx.store.get_content(A)
    assert (c.remote_name, c.uri, c.expires_at) == ("files/new", "https://x/files/new",
                                                     T0 + 48 * HOUR)
    assert ctx.store.doomed() == ["files/old"]
    assert told == [T0 + 48 * HOUR]


def test_a_failed_renewal_waits_to_retry_while_the_working_copy_serves(ctx, add_copy) -> None:
    m = _mirror(ctx, [])
    add_copy(A, T0 + 2 * HOUR, name="files/old")
    m.promote(A, _file("files/new", "FAILED"))
    c = ctx.store.get_content(A)
    assert c.remote_name == "files/old"  # still serving
    assert c.retry_at == T0 + failures.backoff(1, 0.5)
    assert ctx.store.doomed() == ["files/new"]


def test_a_failed_first_copy_is_a_verdict_on_the_bytes(ctx) -> None:
    m = _mirror(ctx, [])
    ctx.store.ensure_content(A, 10, "image/png", "image", T0)
    m.promote(A, _file("files/new", "FAILED"))
    c = ctx.store.get_content(A)
    assert c.retry_at is None and "bad bytes" in c.error
    assert ctx.store.doomed() == ["files/new"]


def test_a_copy_of_a_retired_content_is_doomed(ctx) -> None:
    told: list[float] = []
    _mirror(ctx, told).promote(A, _file("files/new", "ACTIVE", T0 + 48 * HOUR))
    assert ctx.store.doomed() == ["files/new"] and told == []


def test_a_reload_reaches_every_part(ctx, add_copy) -> None:
    m = _mirror(ctx, [])
    add_copy(A, T0 + 10 * HOUR)
    assert m.renewals.next_at() == T0 + 4 * HOUR
    m.renew_before = HOUR
    assert m.renewals.next_at() == T0 + 9 * HOUR
    assert m.answers.uri(File("files/x")) == f"{NOWHERE}/v1beta/files/x"
    other = GeminiClient("k", "http://127.0.0.2:9")
    m.client = other
    assert m.answers.uri(File("files/x")) == "http://127.0.0.2:9/v1beta/files/x"
    asyncio.run(other.aclose())


def test_a_403_on_a_copy_a_renewal_replaced_forgets_nothing(ctx, add_copy) -> None:
    # A generation used files/old while its renewal promoted files/new and deleted the
    # old one: the 403 is about the old copy; the new one still serves.
    m = _mirror(ctx, [])
    add_copy(A, T0 + 2 * HOUR, name="files/old")
    old_uri = ctx.store.get_content(A).uri
    m.promote(A, _file("files/new", "ACTIVE", T0 + 48 * HOUR))
    assert m.forget_copy(A, old_uri) is False
    assert ctx.store.get_content(A).remote_name == "files/new"
    assert m.forget_copy(A, "https://x/files/new") is True  # the one that serves: gone
    assert ctx.store.get_content(A).remote_name is None
