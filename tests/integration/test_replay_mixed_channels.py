"""A replay of a capture that mixes the Exchange feed's level2, ticker and matches channels (as a
public capture does) publishes exactly its trades, skips the other channels' frames by type, and
dead-letters only the broken frame, logging dead letters at a bounded rate."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from ingestion.metrics import IngestMetrics
from ingestion.runner import Ingestor, RunOptions
from ingestion.sources import RecordingWriter
from tests.fixtures.ingest import ingest_settings, read_topic, trade_ids
from tests.fixtures.services import Broker

FRAMES = Path(__file__).resolve().parents[1] / "fixtures" / "coinbase_frames"
T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def fixture(name: str) -> dict:
    return orjson.loads((FRAMES / name).read_bytes())


def capture(path: Path, trades: int) -> dict[str, int]:
    """Write a replay file shaped like a real capture: a subscription reply, a level2 snapshot, then
    per trade a few l2updates and a ticker around the match; plus broken frames. Returns how many
    frames of each skipped type it holds."""
    writer = RecordingWriter(path)
    at = iter(T0 + timedelta(milliseconds=i) for i in range(100_000))
    writer.write(orjson.dumps(fixture("subscriptions_level2_ticker.json")), next(at))
    writer.write(orjson.dumps(fixture("snapshot.json")), next(at))
    skipped = {"snapshot": 1, "l2update": 0, "ticker": 0}
    match, l2update, ticker = fixture("match.json"), fixture("l2update.json"), fixture("ticker.json")
    for n in range(trades):
        for _ in range(3):
            writer.write(orjson.dumps(l2update), next(at))
            skipped["l2update"] += 1
        trade = match | {"trade_id": 1000 + n, "sequence": 5000 + n}
        writer.write(orjson.dumps(trade), next(at))
        writer.write(orjson.dumps(ticker | {"product_id": "BTC-USD", "trade_id": 1000 + n}), next(at))
        skipped["ticker"] += 1
    for _ in range(5):  # broken: these, and only these, are dead letters
        writer.write(b'{"type":"match","product_id":"BTC-USD"}', next(at))
    writer.close()
    return skipped


def test_replay_skips_known_channels_and_dead_letters_only_broken_frames(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ingest_settings(broker)
    path = tmp_path / "capture.ndjson.zst"
    skipped = capture(path, trades=40)
    metrics = IngestMetrics()
    with caplog.at_level(logging.WARNING, logger="ingestion.pipeline"):
        summary = asyncio.run(
            Ingestor(settings, metrics, echo=lambda _: None).run(
                RunOptions(source="replay", replay_file=path, speed=0, serve_metrics=False)
            )
        )
    c = summary.counts
    assert (c.trades, c.skipped, c.dead_letters) == (40, sum(skipped.values()), 5)
    assert summary.acked == 40 and summary.dead_lettered == 5 and summary.unsent == 0
    assert trade_ids(read_topic(settings.kafka.bootstrap_servers, settings.kafka.trades_topic)) == {
        "BTC-USD": list(range(1000, 1040))
    }
    assert len(read_topic(settings.kafka.bootstrap_servers, settings.kafka.dlq_topic)) == 5
    for kind, count in skipped.items():
        assert metrics.registry.get_sample_value("coinbase_frames_skipped_total", {"type": kind}) == count
    assert metrics.registry.get_sample_value("coinbase_messages_received_total", {"type": "skipped"}) == sum(
        skipped.values()
    )
    # five dead letters within one interval: one line, not five
    lines = [r.getMessage() for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert len(lines) == 1 and "match missing fields" in lines[0]
