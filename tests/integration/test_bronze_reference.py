"""Reference prices land in ``bronze.reference_prices`` through the one bronze writer (its
``reference_prices`` stream) with the same exactly-once contract as trades: a writer killed right
after its table commit, before the group commit, and restarted, leaves one row per Kafka offset;
a message that is not a reference price is dead-lettered with its reason, and trades are untouched."""

from __future__ import annotations

import signal
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from infrastructure import services
from infrastructure.bootstrap import ensure_tables, ensure_topics
from infrastructure.catalog import load_catalog
from infrastructure.tables import BRONZE_REFERENCE_PRICES, BRONZE_TRADES
from ingestion.dead_letters import read_dead_letter_headers
from ingestion.reference_events import ReferencePrice
from orchestration.local_stack import produce
from tests.fixtures.bronze import BronzeEnv
from tests.fixtures.ingest import read_topic
from tests.fixtures.services import settings_for

START = datetime(2026, 1, 1, tzinfo=UTC)


def events(count: int, offset: int = 0) -> list[ReferencePrice]:
    return [
        ReferencePrice(
            source="coingecko",
            coin_id="bitcoin",
            vs_currency="usd",
            product_id="BTC-USD",
            price=Decimal(f"65000.{i:010d}"),
            event_time=START + timedelta(seconds=30 * i),
            receive_time=START + timedelta(seconds=30 * i + 1),
            raw='{"bitcoin":{}}',
        )
        for i in range(offset, offset + count)
    ]


@pytest.fixture
def reference_env(broker, seaweedfs, tmp_path: Path) -> BronzeEnv:
    suffix = uuid.uuid4().hex[:8]
    settings = settings_for(
        broker,
        seaweedfs,
        data_dir=tmp_path / "data",
        kafka={
            "trades_topic": f"trades-{suffix}",
            "dlq_topic": f"dlq-{suffix}",
            "reference_topic": f"ref-{suffix}",
        },
        bronze={"consumer_group": f"bronze-{suffix}", "flush_rows": 50, "flush_seconds": 1.0},
        metrics={"bronze_port": services.free_port(), "bronze_reference_port": services.free_port()},
    )
    ensure_topics(settings.kafka)
    ensure_tables(load_catalog(settings))
    env = BronzeEnv(settings, tmp_path)
    yield env
    env.kill_all()


def test_reference_prices_land_exactly_once(reference_env: BronzeEnv) -> None:
    env, topic = reference_env, reference_env.settings.kafka.reference_topic
    first = events(120)
    produced = produce(env.settings, ((e.key, e.to_wire()) for e in first), topic=topic)
    produced += produce(env.settings, [(b"coingecko:BTC-USD", b'{"source": "coingecko"}')], topic=topic)

    crashed = env.writer("--stream", "reference_prices", "--no-metrics", "--crash-after-commits", "1")
    assert crashed.wait(timeout=180) == -signal.SIGKILL
    produced += produce(env.settings, ((e.key, e.to_wire()) for e in events(30, 120)), topic=topic)
    writer = env.writer("--stream", "reference_prices", "--no-metrics", "--idle-exit", "6")
    assert writer.wait(timeout=180) == 0
    again = env.writer("--stream", "reference_prices", "--no-metrics", "--idle-exit", "4")
    assert again.wait(timeout=180) == 0  # nothing new: nothing appended twice

    table = load_catalog(env.settings).load_table(BRONZE_REFERENCE_PRICES.identifier)
    rows = table.scan(row_filter=f"kafka_topic == '{topic}'").to_arrow().to_pylist()
    assert len(rows) == 150
    assert len({(r["kafka_partition"], r["kafka_offset"]) for r in rows}) == 150
    by_time = {r["event_time"]: r for r in rows}
    for e in events(150):
        row = by_time[e.event_time]
        assert (row["price"], row["product_id"], row["source"]) == (str(e.price), "BTC-USD", "coingecko")
        assert row["receive_time"] == e.receive_time
    dead = read_topic(env.settings.kafka.bootstrap_servers, env.settings.kafka.dlq_topic)
    assert len(dead) == 1
    headers = read_dead_letter_headers(dead[0].headers())
    assert headers["dlq.stage"] == "bronze" and headers["dlq.reason"].startswith("missing fields: coin_id")
    assert headers["dlq.origin"] == f"{topic}/{produced[120][0]}/{produced[120][1]}"
    trades = load_catalog(env.settings).load_table(BRONZE_TRADES.identifier)
    assert trades.scan(row_filter=f"kafka_topic == '{topic}'").to_arrow().num_rows == 0
