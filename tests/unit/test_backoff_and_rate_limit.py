"""Reconnect backoff with jitter and the REST token bucket."""

from __future__ import annotations

import orjson
import pytest

from ingestion.coinbase_ws import subscribe_message
from ingestion.venue_io import TokenBucket, backoff_delay


def test_backoff_grows_exponentially_then_caps() -> None:
    highest = [backoff_delay(a, 0.5, 30.0, rand=lambda: 1.0) for a in range(10)]
    assert highest[:4] == [0.5, 1.0, 2.0, 4.0]
    assert highest[-1] == 30.0
    assert backoff_delay(1000, 0.5, 30.0, rand=lambda: 1.0) == 30.0


def test_backoff_jitter_stays_in_the_upper_half() -> None:
    assert backoff_delay(3, 0.5, 30.0, rand=lambda: 0.0) == 2.0
    assert backoff_delay(3, 0.5, 30.0, rand=lambda: 0.5) == 3.0
    delays = {backoff_delay(3, 0.5, 30.0) for _ in range(50)}
    assert len(delays) > 1 and all(2.0 <= d <= 4.0 for d in delays)


def test_subscribe_message_asks_for_matches_and_heartbeat() -> None:
    assert orjson.loads(subscribe_message(("BTC-USD", "ETH-USD"))) == {
        "type": "subscribe",
        "product_ids": ["BTC-USD", "ETH-USD"],
        "channels": ["matches", "heartbeat"],
    }


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_spaces_requests_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, burst=1.0, clock=clock)
    assert bucket.reserve() == 0.0
    # back-to-back reservations queue up 0.1 s apart
    assert [round(bucket.reserve(), 6) for _ in range(3)] == [0.1, 0.2, 0.3]
    clock.now += 10.0  # idle refills only up to the burst
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.1)


def test_token_bucket_never_exceeds_rate_over_a_window() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, burst=1.0, clock=clock)
    start_times = []
    for _ in range(100):
        start_times.append(clock.now + bucket.reserve())
        clock.now += 0.01  # callers arrive 100 per second
    for i, t in enumerate(start_times):
        in_window = [s for s in start_times[i:] if s < t + 1.0]
        assert len(in_window) <= 10
