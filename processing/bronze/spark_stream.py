"""Spark Structured Streaming bronze writer (compose stack): one query per bronze stream, Kafka trades
topic -> Iceberg ``bronze.trades`` and reference-price topic -> ``bronze.reference_prices``.

Run with ``spark-submit processing/bronze/spark_stream.py`` in the Spark image (the
``spark-streaming`` service): both queries run in one driver, each with its own checkpoint, so the
second stream costs no second JVM. Settings: ``LAKEHOUSE_KAFKA__*`` (brokers, topics),
``LAKEHOUSE_CATALOG__*`` / ``LAKEHOUSE_S3__*`` (Nessie REST catalog, SeaweedFS),
``LAKEHOUSE_BRONZE__FLUSH_SECONDS`` (trigger interval) and ``LAKEHOUSE_BRONZE__FLUSH_ROWS``
(at most this many Kafka records per micro-batch); checkpoints under ``LAKEHOUSE_DATA_DIR``.

Shape: :func:`parse_kafka_records`, :func:`bronze_rows`, :func:`dead_letters` and
:func:`batch_figures` are pure DataFrame transforms (unit-tested on a static DataFrame shaped like
the Kafka source's); :func:`write_batch` and :func:`main` are the thin I/O around them.

The streams are :mod:`processing.bronze.streams`' (topic, table, metrics port); this module adds per
stream how one Kafka value becomes the table's wire columns (:data:`SPARK_STREAMS`), with the same
checked parser the embedded writer uses (``Trade.from_wire``, ``ReferencePrice.from_wire``).

Metrics: the driver serves the embedded writer's ``lakehouse_bronze_*`` series
(:class:`processing.bronze.metrics.BronzeMetrics`), one registry per stream on the embedded writers'
ports (``LAKEHOUSE_METRICS__BRONZE_PORT``, ``..._BRONZE_REFERENCE_PORT``): rows and
dead letters per micro-batch, write duration, freshness of the newest event, and per-partition
consumer lag from the query's progress events (:func:`partition_lag`).

Guarantees:
- Validity is decided by ``Trade.from_wire`` (``ReferencePrice.from_wire``), the same parser every
  other consumer uses; bronze keeps a trade's ``price``/``size`` as the decimal strings received, and
  a reference price as the embedded writer stores it.
- A record that is not valid is never dropped: it goes to the DLQ topic
  (``LAKEHOUSE_KAFKA__DLQ_TOPIC``) with its original key and value and headers ``reason``,
  ``source_topic``, ``source_partition``, ``source_offset``. The DLQ is written before the batch is
  committed to bronze, so a crash in between re-sends the batch's dead letters (at least once; the
  source headers identify duplicates).
- Exactly once on content, with the embedded writer's progress contract: each append records the
  next Kafka offset per partition in its snapshot summary (``lakehouse.kafka.next-offsets``, read by
  ``processing.bronze.progress`` for both stacks), and a batch keeps only the records at or past
  the offsets the table's current snapshot records (:func:`unwritten`). A replayed micro-batch
  therefore adds nothing, even after compaction or any other commit in between (maintenance
  carries the offsets into its snapshots) and on a catalog that serves only the current snapshot
  (Nessie), so re-delivery never adds a second row for a (topic, partition, offset). The Spark
  checkpoint is no longer what exactly-once depends on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

import orjson

from infrastructure.kafka import spark_kafka_options
from infrastructure.settings import Settings, get_settings
from ingestion import reference_events
from ingestion.events import WIRE_FIELDS, InvalidTrade, Trade
from processing.bronze.reference_rows import reference_columns
from processing.bronze.rows import OFFSETS_PROPERTY, Offsets, encode_offsets, merge_offsets
from processing.bronze.streams import REFERENCE_PRICES, TRADES, Stream
from processing.spark_session import build_session, spark_schema

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType

    from processing.bronze.metrics import BronzeMetrics

QUERY_NAME = "bronze_stream"  # the trades query (its checkpoint directory keeps this name)
ERROR_COLUMN = "dlq_reason"
KAFKA_LINEAGE = {
    "kafka_topic": "topic",
    "kafka_partition": "partition",
    "kafka_offset": "offset",
    "kafka_timestamp": "timestamp",
}


def trade_columns(value: bytes) -> dict[str, object]:
    """A trades-topic value -> ``bronze.trades``' wire columns; raises ``InvalidTrade``."""
    trade = Trade.from_wire(value)
    received = orjson.loads(value)
    return {
        "exchange": trade.exchange,
        "product_id": trade.product_id,
        "trade_id": trade.trade_id,
        # bronze keeps the decimal strings exactly as received ("1E-8" stays "1E-8")
        "price": received["price"],
        "size": received["size"],
        "side": trade.side,
        "event_time": trade.event_time,
        "receive_time": trade.receive_time,
        "sequence": trade.sequence,
        "source": trade.source,
        "raw": trade.raw,
    }


@dataclass(frozen=True)
class SparkStream:
    """One bronze stream as the Spark job runs it: the shared description and the value parser."""

    stream: Stream  # topic, table and metrics port (processing.bronze.streams)
    wire_fields: tuple[str, ...]  # the table's columns that come from the message value
    wire_columns: Callable[[bytes], dict[str, object]]
    query_name: str


SPARK_STREAMS: dict[str, SparkStream] = {
    s.stream.name: s
    for s in (
        SparkStream(TRADES, WIRE_FIELDS, trade_columns, QUERY_NAME),
        SparkStream(
            REFERENCE_PRICES,
            reference_events.WIRE_FIELDS,
            reference_columns,
            f"{QUERY_NAME}_reference_prices",
        ),
    )
}


@cache
def bronze_schema(stream: str = "trades") -> StructType:
    return spark_schema(SPARK_STREAMS[stream].stream.rows.table.schema)


@cache
def parsed_schema(stream: str = "trades") -> StructType:
    """What the parser returns per record: the wire columns of bronze plus the rejection reason."""
    from pyspark.sql import types as T

    wire = [f for f in bronze_schema(stream).fields if f.name in SPARK_STREAMS[stream].wire_fields]
    return T.StructType(
        [T.StructField(f.name, f.dataType, nullable=True) for f in wire]
        + [T.StructField(ERROR_COLUMN, T.StringType(), nullable=True)]
    )


def parse_wire(value: bytes | bytearray | None, stream: str = "trades") -> tuple:
    """One Kafka value -> the wire columns of bronze (in schema order) and ``None``, or Nones and a reason.

    ``{"exchange": "coinbase", "product_id": "BTC-USD", "trade_id": 10, "price": "400.23", ...}``
    -> ``("coinbase", "BTC-USD", 10, "400.23", ..., None)``; ``b"not json"`` -> ``(None, ..., "not JSON: ...")``.
    """
    names = parsed_schema(stream).fieldNames()
    if value is None:
        return (None,) * (len(names) - 1) + ("empty message value",)
    try:
        columns = SPARK_STREAMS[stream].wire_columns(bytes(value))
    except InvalidTrade as exc:
        return (None,) * (len(names) - 1) + (str(exc),)
    columns[ERROR_COLUMN] = None
    return tuple(columns[name] for name in names)


def parse_kafka_records(
    records: DataFrame, ingest_time: Column | None = None, stream: str = "trades"
) -> DataFrame:
    """Kafka source rows (key, value, topic, partition, offset, timestamp, ...) -> parsed rows.

    The result has every column of the stream's bronze table, the original ``key``/``value`` (for
    dead letters) and ``dlq_reason`` (null for valid records). ``ingest_time`` defaults to the
    batch's current time.
    """
    from pyspark.sql import functions as F

    parse = F.udf(lambda value: parse_wire(value, stream), parsed_schema(stream), useArrow=False)
    parsed = records.withColumn("_parsed", parse(F.col("value")))
    ingest = ingest_time if ingest_time is not None else F.current_timestamp()
    columns = []
    for field in bronze_schema(stream).fields:
        if field.name in SPARK_STREAMS[stream].wire_fields:
            source = F.col(f"_parsed.{field.name}")
        elif field.name in KAFKA_LINEAGE:
            source = F.col(KAFKA_LINEAGE[field.name])
        elif field.name == "ingest_time":
            source = ingest
        else:  # a new bronze column must be given a source here, not silently left null
            raise ValueError(f"bronze column {field.name!r} has no source in the Kafka record")
        columns.append(source.cast(field.dataType).alias(field.name))
    return parsed.select(
        F.col("key"), F.col("value"), *columns, F.col(f"_parsed.{ERROR_COLUMN}").alias(ERROR_COLUMN)
    )


def bronze_rows(parsed: DataFrame, stream: str = "trades") -> DataFrame:
    """The valid records, exactly the columns (and order) of the stream's table (``bronze.trades``)."""
    from pyspark.sql import functions as F

    return parsed.where(F.col(ERROR_COLUMN).isNull()).select(*bronze_schema(stream).fieldNames())


def dead_letters(parsed: DataFrame, dlq_topic: str) -> DataFrame:
    """The rejected records as Kafka sink rows: original key and value, the reason and source in headers."""
    from pyspark.sql import functions as F

    def header(name: str, value: Column) -> Column:
        return F.struct(F.lit(name).alias("key"), F.encode(value.cast("string"), "UTF-8").alias("value"))

    return parsed.where(F.col(ERROR_COLUMN).isNotNull()).select(
        F.lit(dlq_topic).alias("topic"),
        F.col("key"),
        F.col("value"),
        F.array(
            header("reason", F.col(ERROR_COLUMN)),
            header("source_topic", F.col("kafka_topic")),
            header("source_partition", F.col("kafka_partition")),
            header("source_offset", F.col("kafka_offset")),
        ).alias("headers"),
    )


def batch_figures(parsed: DataFrame) -> tuple[int, int, float | None]:
    """(valid trades, dead letters, newest valid event time as epoch seconds or None), in one pass."""
    from pyspark.sql import functions as F

    valid = F.col(ERROR_COLUMN).isNull()
    row = parsed.agg(
        F.count(F.when(valid, 1)).alias("valid"),
        F.count(F.when(~valid, 1)).alias("rejected"),
        # epoch microseconds: independent of the session's time zone
        F.max(F.when(valid, F.unix_micros(F.col("event_time")))).alias("newest_us"),
    ).first()
    newest = None if row["newest_us"] is None else row["newest_us"] / 1e6
    return row["valid"], row["rejected"], newest


def partition_lag(end_offset: str | None, latest_offset: str | None, topic: str) -> dict[int, int]:
    """Messages per partition the query has not read yet, from a progress event's Kafka source offsets.

    ``'{"crypto.trades":{"0":120,"1":80}}'``, ``'{"crypto.trades":{"0":150,"1":80}}'`` -> ``{0: 30, 1: 0}``
    (no offsets yet -> ``{}``).
    """
    if not end_offset or not latest_offset:
        return {}
    ends = orjson.loads(end_offset).get(topic, {})
    latest = orjson.loads(latest_offset).get(topic, {})
    return {int(p): max(0, int(latest[p]) - int(ends.get(p, 0))) for p in latest}


def unwritten(parsed: DataFrame, recorded: Offsets) -> DataFrame:
    """The records of a batch that bronze does not hold yet: those at or past the next offset the
    table records for their (topic, partition). A replay of a committed batch filters to nothing."""
    from pyspark.sql import functions as F

    written = [
        (F.col("kafka_topic") == topic)
        & (F.col("kafka_partition") == partition)
        & (F.col("kafka_offset") < offset)
        for (topic, partition), offset in sorted(recorded.items())
    ]
    if not written:
        return parsed
    covered = written[0]
    for condition in written[1:]:
        covered = covered | condition
    return parsed.where(~covered)


def next_offsets(parsed: DataFrame) -> Offsets:
    """The next offset to read per (topic, partition) after this batch: its highest offset + 1."""
    from pyspark.sql import functions as F

    rows = parsed.groupBy("kafka_topic", "kafka_partition").agg(F.max("kafka_offset").alias("last")).collect()
    return {(r["kafka_topic"], int(r["kafka_partition"])): int(r["last"]) + 1 for r in rows}


def write_batch(
    batch: DataFrame,
    batch_id: int,
    settings: Settings,
    table: str,
    metrics: BronzeMetrics | None = None,
    stream: str = "trades",
) -> None:
    """Dead letters to Kafka first, then one append of the records the stream's table does not hold
    yet, recording the offsets it covers in the snapshot summary (the embedded writer's contract)."""
    from processing.bronze.progress import bronze_offsets

    recorded = bronze_offsets(settings, SPARK_STREAMS[stream].stream.identifier)
    parsed = unwritten(parse_kafka_records(batch, stream=stream), recorded).persist()
    started = time.monotonic()
    try:
        if parsed.isEmpty():  # a replay of what an earlier attempt committed
            return
        rejected = dead_letters(parsed, settings.kafka.dlq_topic)
        if not rejected.isEmpty():
            (
                rejected.write.format("kafka")
                .options(**spark_kafka_options(settings.kafka))
                .option("kafka.enable.idempotence", "true")
                .save()
            )
        offsets = merge_offsets(recorded, next_offsets(parsed))
        (
            bronze_rows(parsed, stream)
            .writeTo(table)
            .option("fanout-enabled", "true")  # no sort needed before a partitioned write
            # the parsed columns are nullable in Spark's eyes but never null for a valid record
            # (from_wire); Spark's by-name output resolution asserts it row by row
            .option("check-nullability", "false")
            .option(f"snapshot-property.{OFFSETS_PROPERTY}", encode_offsets(offsets))
            .append()
        )
        if metrics is not None:
            record_batch(metrics, parsed, time.monotonic() - started)
    finally:
        parsed.unpersist()


def record_batch(metrics: BronzeMetrics, parsed: DataFrame, duration_s: float) -> None:
    """Count one committed micro-batch (a replayed, already-committed batch is not counted twice)."""
    valid, rejected, newest = batch_figures(parsed)
    metrics.rows_written.inc(valid)
    metrics.dead_letters.inc(rejected)
    metrics.batches.inc()
    metrics.commit_duration.observe(duration_s)
    if newest is not None and not newest <= metrics.newest_event_epoch_s:
        metrics.newest_event_epoch_s = newest  # NaN before the first batch: `not <=` takes it


def lag_listener(metrics: BronzeMetrics, topic: str):
    """A streaming query listener that sets the per-partition lag gauge from each progress event."""
    from pyspark.sql.streaming import StreamingQueryListener

    class LagListener(StreamingQueryListener):
        def onQueryStarted(self, event) -> None:
            pass

        def onQueryProgress(self, event) -> None:
            for source in event.progress.sources:
                for partition, lag in partition_lag(source.endOffset, source.latestOffset, topic).items():
                    metrics.lag.labels(partition=str(partition)).set(lag)

        def onQueryIdle(self, event) -> None:
            pass

        def onQueryTerminated(self, event) -> None:
            pass

    return LagListener()


def start_query(spark, settings: Settings, stream: str):
    """Start one stream's query: its metrics registry and port, its lag listener, its checkpoint."""
    from processing.bronze.metrics import BronzeMetrics

    spec = SPARK_STREAMS[stream]
    topic = spec.stream.topic(settings.kafka)
    table = f"{settings.catalog.name}.{spec.stream.identifier}"
    metrics = BronzeMetrics()
    metrics.serve(settings.metrics.host, spec.stream.port(settings.metrics))
    spark.streams.addListener(lag_listener(metrics, topic))
    records = (
        spark.readStream.format("kafka")
        .options(**spark_kafka_options(settings.kafka))
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        # offsets lost to retention must stop the job loudly, never be skipped silently
        .option("failOnDataLoss", "true")
        .option("maxOffsetsPerTrigger", str(settings.bronze.flush_rows))
        .load()
    )
    query = (
        records.writeStream.queryName(spec.query_name)
        .foreachBatch(lambda batch, batch_id: write_batch(batch, batch_id, settings, table, metrics, stream))
        .option("checkpointLocation", str(settings.data_dir / "checkpoints" / spec.query_name))
        .trigger(processingTime=f"{settings.bronze.flush_seconds} seconds")
        .start()
    )
    print(f"{spec.query_name}: {topic} -> {table}, started {datetime.now().isoformat()}")
    return query


def main(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    spark = build_session(settings, QUERY_NAME)
    for stream in SPARK_STREAMS:
        start_query(spark, settings, stream)
    # either query failing ends the job (and the container restarts it): none stops alone unseen
    spark.streams.awaitAnyTermination()


if __name__ == "__main__":
    main()
