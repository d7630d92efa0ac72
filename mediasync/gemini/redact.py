"""The secrets every log line and recorded value must not carry (the API key).

The HTTP boundary knows the key, so the registry lives here; the log filter
(:mod:`mediasync.app.logs`) and anything that records a URL ask :func:`redact`.
"""

from __future__ import annotations

import re
import threading

# Shorter values would redact ordinary words everywhere; no real key is this short.
_MIN_SECRET_LEN = 4

_secrets_lock = threading.Lock()
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None


def register_secret(value: str) -> None:
    """Make every later log line replace ``value`` with ``***``."""
    global _secret_re
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        # Longest first, so a secret containing another is redacted whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(s) for s in ordered))


def any_secrets() -> bool:
    """Whether a secret is registered (the log filter's fast path)."""
    return _secret_re is not None


def redact(text: str) -> str:
    """Replace every registered secret in ``text`` with ``***``."""
    pattern = _secret_re
    if pattern is None:
        return text
    return pattern.sub("***", text)


def clear_secrets() -> None:
    """Forget every registered secret (a test that registered one puts things back)."""
    global _secret_re
    with _secrets_lock:
        _secrets.clear()
        _secret_re = None
