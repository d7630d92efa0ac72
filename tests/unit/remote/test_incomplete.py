"""File answers read leniently: only proof that the local file changed throws an
upload away; a missing uri, expirationTime or an odd hash keeps the work, with one
warning per kind and run."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mediasync.gemini import File
from mediasync.remote.incomplete import IncompleteAnswers
from tests.unit.remote.parts import HOUR, NOWHERE, T0

BYTES = b"x" * 10  # what add_copy writes
SHA = hashlib.sha256(BYTES).hexdigest()
TTL = 48 * HOUR


def live_form(hex_digest: str) -> str:
    """sha256Hash as the live service writes it: base64 of the hex string (wire/11)."""
    return base64.b64encode(hex_digest.encode()).decode()


def holds(answers: IncompleteAnswers, path: Path, file: File, sha: str = SHA) -> bool:
    return asyncio.run(answers.hash_holds(sha, str(path), file))


@pytest.fixture
def photo(add_copy, tmp_path: Path) -> Path:
    add_copy(SHA, T0 + TTL)
    return tmp_path / "inbox" / f"{SHA[:6]}.png"


def test_the_live_hash_form_that_matches_holds_without_a_word(ctx, photo, caplog) -> None:
    answers = IncompleteAnswers(ctx)
    assert holds(answers, photo, File("files/a", sha256_hash=live_form(SHA)))
    assert not caplog.records


def test_a_missing_hash_keeps_the_upload_and_is_said_once(ctx, photo, caplog) -> None:
    answers = IncompleteAnswers(ctx)
    with caplog.at_level(logging.WARNING, "mediasync"):
        assert holds(answers, photo, File("files/a"))
        assert holds(answers, photo, File("files/b"))
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "no sha256Hash" in said[0]


def test_another_hash_form_is_read_and_said(ctx, photo, caplog) -> None:
    raw = base64.b64encode(bytes.fromhex(SHA)).decode()
    with caplog.at_level(logging.WARNING, "mediasync"):
        assert holds(IncompleteAnswers(ctx), photo, File("files/a", sha256_hash=raw))
    assert "raw form" in caplog.text


def test_a_differing_hash_throws_the_upload_away_only_if_the_file_changed(ctx, photo,
                                                                          caplog) -> None:
    answers = IncompleteAnswers(ctx)
    other = File("files/a", sha256_hash=live_form(hashlib.sha256(b"other").hexdigest()))
    # The file still holds what we hashed: the service's hash is what we do not understand.
    with caplog.at_level(logging.WARNING, "mediasync"):
        assert holds(answers, photo, other)
    assert "the local file is unchanged, so the upload is kept" in caplog.text
    # The file now holds other bytes than the upload was made from: upload again.
    photo.write_bytes(b"y" * 10)
    assert not holds(answers, photo, other)


def test_a_differing_hash_of_a_vanished_file_keeps_the_upload(ctx, photo) -> None:
    photo.unlink()  # the next look at the path decides, not the upload check
    other = File("files/a", sha256_hash=live_form(hashlib.sha256(b"other").hexdigest()))
    assert holds(IncompleteAnswers(ctx), photo, other)


def test_a_missing_uri_is_the_one_the_name_implies(ctx, caplog) -> None:
    answers = IncompleteAnswers(ctx)
    assert answers.uri(File("files/a", uri="https://x/files/a")) == "https://x/files/a"
    assert not caplog.records
    with caplog.at_level(logging.WARNING, "mediasync"):
        assert answers.uri(File("files/b")) == f"{NOWHERE}/v1beta/files/b"
    assert "has no uri" in caplog.text


def test_a_missing_expiry_is_48_hours_from_the_upload(ctx) -> None:
    answers = IncompleteAnswers(ctx)
    at = datetime.fromtimestamp(T0 + HOUR, UTC)
    assert answers.expiry(File("files/a", expiration_time=at)) == T0 + HOUR
    created = datetime.fromtimestamp(T0 - HOUR, UTC)
    assert answers.expiry(File("files/a", create_time=created)) == T0 - HOUR + TTL
    ctx.clock.now = T0 + 5  # no time in the answer at all: from now
    assert answers.expiry(File("files/a")) == T0 + 5 + TTL
