"""Outages are retried until the process stops, one short line per retry, tracebacks only in debug."""

from __future__ import annotations

import logging

import pytest

from infrastructure.retrying import until_stopped


def test_retries_until_it_works_one_line_each(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise OSError("storage\nunavailable")
        return "ok"

    log = logging.getLogger("test.retrying")
    with caplog.at_level(logging.WARNING, logger="test.retrying"):
        assert until_stopped("append", log, lambda: False, 0.01, sleep=lambda _s: None)(flaky) == "ok"
    assert len(calls) == 4
    assert [r.getMessage() for r in caplog.records] == [
        f"append failed (attempt {n}, retrying in {w:.1f} s): OSError: storage unavailable"
        for n, w in ((1, 0.01), (2, 0.01), (3, 0.01))
    ]
    assert all(r.exc_info is None for r in caplog.records)  # no traceback without debug


def test_a_stop_ends_the_retries_with_the_last_error(caplog: pytest.LogCaptureFixture) -> None:
    attempts = []

    def down() -> None:
        attempts.append(1)
        raise ConnectionError("refused")

    log = logging.getLogger("test.retrying")
    with caplog.at_level(logging.WARNING, logger="test.retrying"), pytest.raises(ConnectionError):
        until_stopped("connect", log, lambda: len(attempts) >= 3, 0.01, debug=True, sleep=lambda _s: None)(
            down
        )
    assert len(attempts) == 3
    assert all(r.exc_info is not None for r in caplog.records)  # debug: with the traceback
