"""trade_id gap detection and duplicate recognition per product."""

from __future__ import annotations

from ingestion.continuity import Continuity, Gap


def test_consecutive_ids_have_no_gap() -> None:
    c = Continuity()
    assert [c.observe_trade("BTC-USD", i) for i in range(5, 10)] == [None] * 5
    assert c.last_trade_id("BTC-USD") == 9


def test_a_jump_is_a_gap_of_the_missing_ids() -> None:
    c = Continuity()
    c.observe_trade("BTC-USD", 10)
    gap = c.observe_trade("BTC-USD", 14)
    assert gap == Gap("BTC-USD", 10, 14)
    assert gap.missing == 3  # 11, 12, 13


def test_products_are_tracked_apart() -> None:
    c = Continuity()
    c.observe_trade("BTC-USD", 10)
    assert c.observe_trade("ETH-USD", 500) is None
    assert c.observe_trade("BTC-USD", 11) is None


def test_heartbeat_ahead_of_the_last_trade_reveals_missed_trades() -> None:
    c = Continuity()
    c.observe_trade("BTC-USD", 10)
    assert c.observe_heartbeat("BTC-USD", 10) is None
    gap = c.observe_heartbeat("BTC-USD", 13)
    assert gap == Gap("BTC-USD", 10, 14)  # 11..13 missed
    assert c.observe_trade("BTC-USD", 14) is None  # no second gap for the same ids


def test_first_heartbeat_sets_the_baseline_without_a_gap() -> None:
    c = Continuity()
    assert c.observe_heartbeat("BTC-USD", 99) is None
    assert c.observe_trade("BTC-USD", 100) is None
    assert c.observe_trade("BTC-USD", 102) == Gap("BTC-USD", 100, 102)


def test_old_or_repeated_ids_are_not_gaps() -> None:
    c = Continuity()
    c.observe_trade("BTC-USD", 10)
    assert c.observe_trade("BTC-USD", 10) is None
    assert c.observe_trade("BTC-USD", 7) is None
    assert c.last_trade_id("BTC-USD") == 10


def test_seen_recognises_duplicates_within_a_bounded_window() -> None:
    c = Continuity(recent_ids=3)
    assert [c.seen("BTC-USD", i) for i in (1, 2, 3)] == [False] * 3
    assert c.seen("BTC-USD", 2) is True
    assert c.seen("ETH-USD", 2) is False
    for i in range(4, 8):
        c.seen("BTC-USD", i)  # past 2 x 3 ids: those more than 3 below the highest are forgotten
    assert c.seen("BTC-USD", 1) is False
    assert c.seen("BTC-USD", 7) is True
    assert len(c._products["BTC-USD"].recent) <= 2 * 3 + 1
