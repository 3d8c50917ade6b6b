"""librdkafka's lines in a log file (not a terminal): warnings pass at most once per interval, with a count."""

from __future__ import annotations

import logging

from ingestion.pipeline import EveryInterval
from orchestration.cli import OnePerInterval


def test_librdkafka_lines_are_rate_limited_with_a_count() -> None:
    now = [0.0]
    gate = OnePerInterval(EveryInterval(30.0, clock=lambda: now[0]))

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("librdkafka", logging.ERROR, __file__, 1, msg, ("x",), None)

    assert gate.filter(record("FAIL %s")) is True
    assert [gate.filter(record("FAIL %s")) for _ in range(5)] == [False] * 5
    now[0] = 30.0
    passed = record("FAIL %s")
    assert gate.filter(passed) is True and passed.getMessage() == "FAIL x (5 more lines like it not logged)"
