"""The bronze streaming job's transform, on a static DataFrame shaped like Spark's Kafka source."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from infrastructure.tables import BRONZE_REFERENCE_PRICES, BRONZE_TRADES
from ingestion.events import Trade
from ingestion.reference_events import ReferencePrice
from processing.bronze.spark_stream import (
    ERROR_COLUMN,
    bronze_rows,
    bronze_schema,
    dead_letters,
    parse_kafka_records,
)

TOPIC = "crypto.trades"
DLQ = "crypto.trades.dlq"
INGEST = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)

# Spark's Kafka source schema (key and value are bytes)
KAFKA_SOURCE = T.StructType(
    [
        T.StructField("key", T.BinaryType()),
        T.StructField("value", T.BinaryType()),
        T.StructField("topic", T.StringType()),
        T.StructField("partition", T.IntegerType()),
        T.StructField("offset", T.LongType()),
        T.StructField("timestamp", T.TimestampType()),
        T.StructField("timestampType", T.IntegerType()),
    ]
)


def trade(trade_id: int, price: str = "64000.12", size: str = "0.00000001", **overrides: object) -> dict:
    wire = orjson.loads(
        Trade(
            exchange="coinbase",
            product_id="BTC-USD",
            trade_id=trade_id,
            price=Decimal(price),
            size=Decimal(size),
            side="buy",
            event_time=datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
            receive_time=datetime(2024, 5, 1, 12, 0, 0, 223456, tzinfo=UTC),
            sequence=1000 + trade_id,
            source="ws",
            raw='{"type":"match"}',
        ).to_wire()
    )
    wire.update(overrides)
    return wire


def records(spark: SparkSession, values: list[bytes | None]):
    rows = [
        (b"coinbase:BTC-USD", value, TOPIC, 2, 100 + i, datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC), 0)
        for i, value in enumerate(values)
    ]
    return spark.createDataFrame(rows, KAFKA_SOURCE)


def test_valid_trades_become_exactly_the_bronze_columns(spark: SparkSession) -> None:
    values = [orjson.dumps(trade(1)), orjson.dumps(trade(2) | {"price": "1E-8", "size": "12.50"})]
    parsed = parse_kafka_records(records(spark, values), ingest_time=F.lit(INGEST))
    bronze = bronze_rows(parsed)

    # names, order and types are those of the Iceberg contract, not a second hand-typed copy
    assert bronze.columns == [f.name for f in BRONZE_TRADES.schema.fields]
    assert [f.dataType for f in bronze.schema.fields] == [f.dataType for f in bronze_schema().fields]
    assert bronze_schema()["event_time"].dataType == T.TimestampType()
    assert bronze_schema()["trade_id"].dataType == T.LongType()
    assert bronze_schema()["kafka_partition"].dataType == T.IntegerType()

    rows = sorted(bronze.collect(), key=lambda r: r.trade_id)
    assert [r.trade_id for r in rows] == [1, 2]
    first, second = rows
    # decimal strings exactly as received, never floats
    assert (first.price, first.size) == ("64000.12", "0.00000001")
    assert (second.price, second.size) == ("1E-8", "12.50")
    assert first.event_time.replace(tzinfo=UTC) == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert (first.kafka_topic, first.kafka_partition, first.kafka_offset) == (TOPIC, 2, 100)
    assert first.ingest_time.replace(tzinfo=UTC) == INGEST
    assert first.sequence == 1001 and first.source == "ws" and first.side == "buy"


MALFORMED = [
    (b"not json at all", "not JSON"),
    (orjson.dumps({"exchange": "coinbase"}), "missing fields"),
    (orjson.dumps(trade(3) | {"price": "-1"}), "non-positive price"),
    (orjson.dumps(trade(4) | {"price": 64000.12}), "price must be a decimal string"),
    (orjson.dumps(trade(5) | {"side": "hold"}), "unknown side"),
    (orjson.dumps(trade(6) | {"event_time": "2024-05-01T12:00:00"}), "event_time has no timezone"),
    (None, "empty message value"),
]


def test_malformed_values_go_to_the_dlq_with_a_reason_and_nothing_is_lost(spark: SparkSession) -> None:
    good = [orjson.dumps(trade(10)), orjson.dumps(trade(11))]
    values = good + [value for value, _ in MALFORMED]
    parsed = parse_kafka_records(records(spark, values), ingest_time=F.lit(INGEST))
    valid = bronze_rows(parsed).collect()
    dlq = dead_letters(parsed, DLQ).collect()

    # every record lands exactly once: in bronze or in the dead-letter output
    assert len(valid) + len(dlq) == len(values)
    assert sorted(r.trade_id for r in valid) == [10, 11]
    assert {r.topic for r in dlq} == {DLQ}

    by_offset = {}
    for row in dlq:
        headers = {h.key: bytes(h.value).decode() for h in row.headers}
        by_offset[int(headers["source_offset"])] = (row, headers)
    for i, (value, reason) in enumerate(MALFORMED):
        row, headers = by_offset[100 + len(good) + i]
        assert reason in headers["reason"]
        assert headers["source_topic"] == TOPIC and headers["source_partition"] == "2"
        # the original key and value travel unchanged so the record can be replayed after a fix
        assert row.value == value and row.key == b"coinbase:BTC-USD"


def test_a_new_bronze_column_without_a_source_fails_loudly(spark: SparkSession, monkeypatch) -> None:
    from processing.bronze import spark_stream as bronze_stream

    extended = T.StructType([*bronze_schema().fields, T.StructField("mystery", T.StringType())])
    monkeypatch.setattr(bronze_stream, "bronze_schema", lambda stream="trades": extended)
    with pytest.raises(ValueError, match="mystery"):
        parse_kafka_records(records(spark, [orjson.dumps(trade(1))]))


def reference(**overrides: object) -> bytes:
    wire = orjson.loads(
        ReferencePrice(
            source="coingecko",
            coin_id="bitcoin",
            vs_currency="usd",
            product_id="BTC-USD",
            price=Decimal("67187.3358"),
            event_time=datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
            receive_time=datetime(2024, 5, 1, 12, 0, 12, 345678, tzinfo=UTC),
            raw='{"bitcoin":{"usd":67187.3358,"last_updated_at":1714564800}}',
        ).to_wire()
    )
    return orjson.dumps(wire | overrides)


def test_reference_prices_become_their_bronze_columns_and_bad_ones_dead_letters(spark: SparkSession) -> None:
    """The job's second query: the reference topic -> bronze.reference_prices, same DLQ contract."""
    values = [reference(), reference(price="0.00001234", coin_id="ethereum", product_id="ETH-USD"),
              reference(price="-5"), reference(source="someone"), b"[]", None]  # fmt: skip
    parsed = parse_kafka_records(records(spark, values), ingest_time=F.lit(INGEST), stream="reference_prices")
    bronze = bronze_rows(parsed, "reference_prices")
    assert bronze.columns == [f.name for f in BRONZE_REFERENCE_PRICES.schema.fields]
    rows = sorted(bronze.collect(), key=lambda r: r.kafka_offset)
    assert [(r.coin_id, r.product_id, r.price) for r in rows] == [
        ("bitcoin", "BTC-USD", "67187.3358"),
        ("ethereum", "ETH-USD", "0.00001234"),  # exact decimal strings, as the embedded writer keeps them
    ]
    first = rows[0]
    assert first.event_time.replace(tzinfo=UTC) == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert (first.source, first.vs_currency, first.kafka_topic, first.kafka_offset) == (
        "coingecko",
        "usd",
        TOPIC,
        100,
    )
    assert first.ingest_time.replace(tzinfo=UTC) == INGEST

    dlq = dead_letters(parsed, DLQ).collect()
    assert len(rows) + len(dlq) == len(values)
    reasons = {
        int(h["source_offset"]): h["reason"]
        for h in ({x.key: bytes(x.value).decode() for x in row.headers} for row in dlq)
    }
    assert "non-positive" in reasons[102] and "unknown reference source" in reasons[103]
    assert set(reasons) == {102, 103, 104, 105}


def test_error_column_is_null_exactly_for_valid_rows(spark: SparkSession) -> None:
    parsed = parse_kafka_records(records(spark, [orjson.dumps(trade(1)), b"{}"]), ingest_time=F.lit(INGEST))
    reasons = [r[ERROR_COLUMN] for r in parsed.orderBy("kafka_offset").collect()]
    assert reasons[0] is None and reasons[1].startswith("missing fields")


def test_batch_figures_count_every_record_once_and_find_the_newest_event(spark: SparkSession) -> None:
    from processing.bronze.metrics import BronzeMetrics
    from processing.bronze.spark_stream import batch_figures, record_batch

    newest = datetime(2024, 5, 1, 12, 0, 7, 250000, tzinfo=UTC)
    values = [orjson.dumps(trade(1)), orjson.dumps(trade(2) | {"event_time": newest.isoformat()}), b"{}"]
    parsed = parse_kafka_records(records(spark, values), ingest_time=F.lit(INGEST))
    assert batch_figures(parsed) == (2, 1, newest.timestamp())

    metrics = BronzeMetrics()
    record_batch(metrics, parsed, 0.5)
    record_batch(metrics, parsed, 0.25)
    value = metrics.registry.get_sample_value
    assert value("lakehouse_bronze_rows_written_total") == 4
    assert value("lakehouse_bronze_dead_letters_total") == 2
    assert value("lakehouse_bronze_batches_total") == 2
    assert value("lakehouse_bronze_commit_duration_seconds_sum") == 0.75
    assert metrics.newest_event_epoch_s == newest.timestamp()


def test_a_batch_of_dead_letters_only_keeps_the_freshness_unset(spark: SparkSession) -> None:
    from processing.bronze.spark_stream import batch_figures

    parsed = parse_kafka_records(records(spark, [b"{}", None]), ingest_time=F.lit(INGEST))
    assert batch_figures(parsed) == (0, 2, None)


def test_partition_lag_from_kafka_source_progress_offsets() -> None:
    from processing.bronze.spark_stream import partition_lag

    end = orjson.dumps({TOPIC: {"0": 120, "1": 80}}).decode()
    latest = orjson.dumps({TOPIC: {"0": 150, "1": 80, "2": 5}}).decode()
    assert partition_lag(end, latest, TOPIC) == {0: 30, 1: 0, 2: 5}
    assert partition_lag(None, latest, TOPIC) == {}
    assert partition_lag(end, latest, "other.topic") == {}


def test_the_lag_listener_sets_the_gauge_per_partition() -> None:
    from types import SimpleNamespace

    from processing.bronze.metrics import BronzeMetrics
    from processing.bronze.spark_stream import lag_listener

    metrics = BronzeMetrics()
    source = SimpleNamespace(  # the two fields of pyspark's SourceProgress the listener reads
        endOffset=orjson.dumps({TOPIC: {"0": 7}}).decode(),
        latestOffset=orjson.dumps({TOPIC: {"0": 19}}).decode(),
    )
    lag_listener(metrics, TOPIC).onQueryProgress(SimpleNamespace(progress=SimpleNamespace(sources=[source])))
    assert (
        metrics.registry.get_sample_value("lakehouse_bronze_consumer_lag_messages", {"partition": "0"}) == 12
    )
