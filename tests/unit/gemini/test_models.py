"""parse_time reads the service's usual form by slicing (three times per listed file):
the same instant as the general reading, for that form and its near misses."""

from __future__ import annotations

from datetime import datetime

from mediasync.gemini.models import parse_time
from mediasync.gemini.models import parse_time_general as general


def test_the_usual_form_and_its_near_misses_read_as_the_general_form_does():
    forms = [
        "2026-01-02T03:04:05.123456789Z", "2026-01-02T03:04:05.123456Z",
        "2026-01-02T03:04:05.1Z", "2026-01-02T03:04:05.12Z", "2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05.Z", "2026-01-02T03:04:05.1234567890123Z",
        "2026-01-02t03:04:05.5Z", "2026-01-02 03:04:05.5Z", "2026-01-02T03:04:05.5z",
        " 2026-01-02T03:04:05.5Z", "2026-01-02T03:04:05.5Z ", "2026-13-02T03:04:05.5Z",
        "2026-01-02T25:04:05.5Z", "2026-01-02T03:04:05.5+02:00", "2026-01-02T03:04:05.٣Z",
        "2026-01-02T03:04:05.1a3Z", "x026-01-02T03:04:05.5Z", "2026-01-02T03:04:05,5Z",
        "2026-01-02T03:04:05.5", "0001-01-01T00:00:00.000001Z", "9999-12-31T23:59:59.999999999Z",
    ]
    for value in forms:
        assert parse_time(value) == general(value), value
    assert parse_time("2026-01-02T03:04:05.123456789Z") == datetime.fromisoformat(
        "2026-01-02T03:04:05.123456+00:00")
