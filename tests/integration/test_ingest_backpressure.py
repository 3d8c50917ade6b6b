"""A full local producer queue blocks the source instead of dropping trades (BufferError path)."""

from __future__ import annotations

from ingestion.runner import RunOptions
from tests.fixtures.ingest import IngestThread, ingest_settings, read_topic, trade_ids
from tests.fixtures.services import Broker


def test_tiny_producer_queue_loses_nothing(broker: Broker) -> None:
    # five messages of local buffer against an unpaced synthetic source: produce() overflows constantly
    settings = ingest_settings(broker, kafka={"producer_queue_max_messages": 5, "producer_linger_ms": 5})
    options = RunOptions(source="synthetic", speed=0, max_messages=3000, seed=3, serve_metrics=False)
    summary = IngestThread(settings, options).start().join(120)
    assert summary.counts.frames == 3000 and summary.counts.dead_letters == 0
    assert summary.acked == summary.counts.trades > 2500
    assert summary.unsent == 0 and summary.failed == 0
    found = trade_ids(read_topic(broker.bootstrap, settings.kafka.trades_topic))
    assert sum(len(ids) for ids in found.values()) == summary.counts.trades
    for ids in found.values():  # consecutive per product, in order: nothing dropped or reordered
        assert ids == list(range(ids[0], ids[0] + len(ids)))
