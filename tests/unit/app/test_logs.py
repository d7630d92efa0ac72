import io
import logging
import os
import re

import pytest

from mediasync.app import logs
from mediasync.app.logs import RedactSecrets, setup_logging
from mediasync.gemini import redact
from mediasync.gemini.redact import register_secret


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_noisy = {n: logging.getLogger(n).level for n in logs.NOISY_LOGGERS}
    yield
    for h in list(root.handlers):
        if h not in saved_handlers:
            root.removeHandler(h)
    root.setLevel(saved_level)
    for n, lvl in saved_noisy.items():
        logging.getLogger(n).setLevel(lvl)
    redact.clear_secrets()
    logging.captureWarnings(False)


def _setup(level="info", env=None):
    buf = io.StringIO()
    setup_logging(level, env=env or {}, stream=buf)
    return buf


def test_journal_prefixes_no_timestamp():
    buf = _setup("debug", env={"JOURNAL_STREAM": "8:12345"})
    log = logging.getLogger("mediasync.test")
    log.debug("d")
    log.info("uploaded %s as %s (%s)", "photo.jpg", "files/abc", "1.2 MB")
    log.warning("w")
    log.error("e")
    log.critical("c")
    assert buf.getvalue().splitlines() == [
        "<7>d",
        "<6>uploaded photo.jpg as files/abc (1.2 MB)",
        "<4>w",
        "<3>e",
        "<2>c",
    ]


def test_plain_format_has_timestamp_and_level():
    buf = _setup()
    logging.getLogger("mediasync.test").info("hello")
    line = buf.getvalue().rstrip("\n")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO hello", line), line


def test_level_filters():
    buf = _setup("warning")
    log = logging.getLogger("mediasync.test")
    log.info("hidden")
    log.warning("shown")
    assert "hidden" not in buf.getvalue()
    assert "shown" in buf.getvalue()


def test_unknown_level():
    with pytest.raises(ValueError, match="unknown log level"):
        setup_logging("loud", env={}, stream=io.StringIO())


def test_one_line_per_event_including_traceback():
    buf = _setup(env={"JOURNAL_STREAM": "1:2"})
    log = logging.getLogger("mediasync.test")
    log.info("first\nsecond")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0] == "<6>first | second"
    assert lines[1].startswith("<3>failed | Traceback")
    assert "RuntimeError: boom" in lines[1]


def test_secrets_redacted_in_message_args_and_traceback():
    buf = _setup()
    key = "AIzaSyDUMMY-secret_key_1234567890"
    register_secret(key)
    log = logging.getLogger("mediasync.test")
    log.info("url https://x/upload?key=%s", key)
    log.info(f"inline {key}")
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        log.exception("call failed")
    out = buf.getvalue()
    assert key not in out
    assert out.count("***") == 3


def test_longer_secret_redacted_whole():
    register_secret("abcd")
    register_secret("abcdefgh")
    assert logs.redact("x abcdefgh y abcd") == "x *** y ***"


def test_short_and_empty_secrets_ignored():
    register_secret("")
    register_secret("ab")
    assert logs.redact("ab cd") == "ab cd"


def test_filter_installed_on_handler():
    _setup()
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_mediasync", False)]
    assert len(ours) == 1
    assert any(isinstance(f, RedactSecrets) for f in ours[0].filters)


def test_setup_is_idempotent():
    _setup()
    buf = _setup()
    logging.getLogger("mediasync.test").info("once")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_mediasync", False)]
    assert len(ours) == 1
    assert buf.getvalue().count("once") == 1


def test_noisy_libraries_quieted_unless_debug():
    _setup("info")
    for name in logs.NOISY_LOGGERS:
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
    _setup("debug")
    for name in logs.NOISY_LOGGERS:
        assert logging.getLogger(name).getEffectiveLevel() == logging.DEBUG


def test_journal_stream_mismatch_on_real_fd(tmp_path):
    # JOURNAL_STREAM inherited but stderr redirected to a file: plain format.
    with open(tmp_path / "out.log", "w") as f:
        setup_logging("info", env={"JOURNAL_STREAM": "1:1"}, stream=f)
        logging.getLogger("mediasync.test").info("x")
    text = (tmp_path / "out.log").read_text()
    assert not text.startswith("<6>")
    assert text.rstrip().endswith("INFO x")


def test_journal_stream_match_on_real_fd(tmp_path):
    with open(tmp_path / "out.log", "w") as f:
        st = os.fstat(f.fileno())
        setup_logging("info", env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, stream=f)
        logging.getLogger("mediasync.test").info("x")
    assert (tmp_path / "out.log").read_text() == "<6>x\n"
