"""Dead-letter log lines are rate-limited with a count of the ones held back (ingestion.pipeline)."""

from __future__ import annotations

from ingestion.pipeline import EveryInterval


def test_dead_letter_log_lines_are_rate_limited_with_a_count() -> None:
    now = [0.0]
    gate = EveryInterval(10.0, clock=lambda: now[0])
    assert gate.allow() == 0  # the first is logged
    assert [gate.allow() for _ in range(3)] == [None, None, None]
    now[0] = 9.9
    assert gate.allow() is None
    now[0] = 10.0
    assert gate.allow() == 4  # logged, saying 4 were held back since
    assert gate.allow() is None
