"""The demo's data path run twice in a row (synthetic ingest -> Kafka -> bronze writer -> silver ->
gold), with the same seed: the second run's trades are new keys of venue ``synthetic``, silver
inserts them all, and gold's candles count them (issue 17, bug 2: they used to collide)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infrastructure import services
from infrastructure.bootstrap import ensure_tables, ensure_topics
from infrastructure.catalog import load_catalog
from ingestion.metrics import IngestMetrics
from ingestion.runner import Ingestor, RunOptions
from processing.bronze.writer import run_writer
from processing.gold import run_gold
from processing.query import run_query
from processing.silver.run import run_silver
from tests.fixtures.services import Broker, launch_seaweedfs, settings_for

FRAMES = 400  # per run: trades and heartbeats of 2 products


@pytest.fixture
def private_lake(broker: Broker, tmp_path: Path):
    """Its own SeaweedFS (gold's dbt tests see only this test's silver) and its own topics."""
    seaweedfs = launch_seaweedfs(tmp_path / "seaweedfs")
    tag = uuid.uuid4().hex[:8]
    try:
        settings = settings_for(
            broker, seaweedfs, data_dir=tmp_path / "data", products=["BTC-USD", "ETH-USD"],
            kafka={"trades_topic": f"trades-{tag}", "dlq_topic": f"dlq-{tag}", "partitions": 2},
            bronze={"consumer_group": f"bronze-{tag}", "flush_seconds": 0.5},
            metrics={"bronze_port": services.free_port()},
        )  # fmt: skip
        ensure_topics(settings.kafka)
        ensure_tables(load_catalog(settings))
        yield settings
    finally:
        seaweedfs.stop()


def demo_run(settings) -> dict:
    """One pass of the demo's path; returns what silver and gold then hold for venue synthetic."""
    options = RunOptions(
        source="synthetic", speed=0, rate_per_s=2000, max_messages=FRAMES, serve_metrics=False
    )
    summary = asyncio.run(Ingestor(settings, IngestMetrics(), echo=lambda _: None).run(options))
    assert summary.acked == summary.counts.trades > 0 and summary.unsent == 0
    writer = run_writer(settings, stop=threading.Event(), idle_exit_s=3.0, serve_metrics=False)
    assert writer.commits >= 1
    now = datetime.now(UTC)
    silver = run_silver(settings, now - timedelta(hours=1), now + timedelta(minutes=1), engine="duckdb")
    gold = run_gold(settings)
    assert gold.success, gold.summary()
    (exchanges,) = run_query(settings, "SELECT list(DISTINCT exchange) FROM lake.silver.trades").fetchone()
    keys, low, high = run_query(
        settings, "SELECT count(*), min(trade_id), max(trade_id) FROM lake.silver.trades"
    ).fetchone()
    (gold_trades,) = run_query(
        settings, "SELECT sum(trade_count) FROM lake.gold.ohlcv_1m WHERE exchange = 'synthetic'"
    ).fetchone()
    return {"trades": summary.counts.trades, "silver": silver, "exchanges": exchanges, "keys": keys,
            "low": low, "high": high, "gold_trades": gold_trades}  # fmt: skip


def test_a_second_synthetic_run_adds_new_keys_and_gold_advances(private_lake) -> None:
    first = demo_run(private_lake)
    second = demo_run(private_lake)
    assert first["exchanges"] == second["exchanges"] == ["synthetic"]  # never "coinbase"
    assert first["low"] > 10**15  # ids from the run's start in microseconds, far from Coinbase's
    # the second run: every trade is a key silver did not have, and gold counts all of them
    # (its window covers both runs' bronze rows: the first run's are the ones silver already has)
    assert second["silver"].inserted == second["trades"] and second["silver"].unchanged == first["trades"]
    assert second["keys"] == first["keys"] + second["trades"]
    assert second["low"] == first["low"] and second["high"] > first["high"]
    assert first["gold_trades"] == first["keys"]
    assert second["gold_trades"] == second["keys"] > first["gold_trades"]
