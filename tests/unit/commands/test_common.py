"""The shared verdict on an API fault: which ones end a command with exit 3."""

from __future__ import annotations

from mediasync.commands.common import (
    EXIT_API,
    EXIT_FAILED,
    api_exit,
    api_fatal,
    describe_api_error,
)
from mediasync.gemini import ApiError, ProtocolError, TransportError


def test_transport_error_is_unreachable_service() -> None:
    e = TransportError("UNAVAILABLE", "ConnectError: refused")
    assert api_fatal(e) and api_exit(e) == EXIT_API
    assert "could not be reached" in describe_api_error(e)


def test_protocol_error_is_not_a_network_or_key_fault() -> None:
    e = ProtocolError("answer is not JSON")
    assert e.code == 0  # what the old `code == 0` test confused with no service
    assert not api_fatal(e) and api_exit(e) == EXIT_FAILED
    assert "could not be reached" not in describe_api_error(e)
    assert "not JSON" in describe_api_error(e)


def test_missing_file_403_is_not_a_key_fault() -> None:
    gone = ApiError(403, "PERMISSION_DENIED",
                    "You do not have permission to access the File abc or it may not exist.")
    assert gone.file_gone and api_exit(gone) == EXIT_FAILED
    no_key = ApiError(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers")
    assert api_exit(no_key) == EXIT_API
