"""Iceberg table contracts: schema, partition spec and sort order of every lakehouse table.

``lakehouse init`` creates them (idempotently) in both stacks and brings live tables to them
(``infrastructure/migrations.py``: compatible changes only); writers build their Arrow batches from
the same schemas, so a column exists in exactly one place. A change to a live table's contract
must be one Iceberg evolves in place: a new optional column (next field id), a type widening, a
doc, a new partition field (next partition field id).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import SortField, SortOrder
from pyiceberg.transforms import DayTransform, HourTransform, IdentityTransform
from pyiceberg.types import (
    DecimalType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

NAMESPACES = ("bronze", "silver", "gold")
# appends merge the current snapshot's manifests once this many accumulated (pyiceberg's default
# count; its 8 MB target keeps them in one bin), instead of adding one manifest per commit forever
MANIFEST_MERGE = {
    "commit.manifest-merge.enabled": "true",
    "commit.manifest.min-count-to-merge": "100",
}


@dataclass(frozen=True)
class TableDef:
    identifier: str  # "namespace.table"
    schema: Schema
    partition_spec: PartitionSpec
    sort_order: SortOrder
    properties: dict[str, str]
    doc: str


# bronze.trades: everything as received (decimals stay the exchange's strings), plus Kafka lineage.
# Re-delivery never adds a row: (kafka_topic, kafka_partition, kafka_offset) is unique, enforced by
# the writer's offset bookkeeping in snapshot summaries, not by the table.
BRONZE_TRADES = TableDef(
    identifier="bronze.trades",
    schema=Schema(
        NestedField(1, "exchange", StringType(), required=True),
        NestedField(2, "product_id", StringType(), required=True),
        NestedField(3, "trade_id", LongType(), required=True),
        NestedField(4, "price", StringType(), required=True, doc="decimal string as received"),
        NestedField(5, "size", StringType(), required=True, doc="decimal string as received"),
        NestedField(6, "side", StringType(), required=True, doc="taker side: buy | sell"),
        NestedField(7, "event_time", TimestamptzType(), required=True, doc="exchange time"),
        NestedField(8, "receive_time", TimestamptzType(), required=True, doc="producer receive time"),
        NestedField(9, "sequence", LongType(), required=False),
        NestedField(10, "source", StringType(), required=True, doc="ws | backfill | replay | synthetic"),
        NestedField(11, "raw", StringType(), required=True, doc="original exchange frame"),
        NestedField(12, "kafka_topic", StringType(), required=True),
        NestedField(13, "kafka_partition", IntegerType(), required=True),
        NestedField(14, "kafka_offset", LongType(), required=True),
        NestedField(15, "kafka_timestamp", TimestamptzType(), required=True),
        NestedField(16, "ingest_time", TimestamptzType(), required=True, doc="when the writer read it"),
    ),
    # day of exchange time: event-time queries (candles, a day's trades) prune to their days; late
    # trades land in their day. Hour of ingest time (added by partition evolution, docs/iceberg.md):
    # the hourly silver run selects one hour of ingest_time, and this field lets a scan skip every
    # other hour's files by partition value rather than by each file's column statistics.
    partition_spec=PartitionSpec(
        PartitionField(source_id=7, field_id=1000, transform=DayTransform(), name="event_day"),
        PartitionField(source_id=16, field_id=1001, transform=HourTransform(), name="ingest_hour"),
    ),
    # product then time: candles and per-product scans read contiguous, well-pruned row groups
    sort_order=SortOrder(
        SortField(source_id=2, transform=IdentityTransform()),
        SortField(source_id=7, transform=IdentityTransform()),
    ),
    properties={
        "write.parquet.compression-codec": "zstd",
        # the bronze writer handles a commit conflict itself (re-read offsets, drop covered rows);
        # pyiceberg's own retry would re-apply a stale batch on top of another writer's append
        "commit.retry.num-retries": "0",
        **MANIFEST_MERGE,
    },
    doc="Raw trades as received from Kafka; append-only.",
)

# Exact money in silver and gold: decimal(38,18) holds any Coinbase price or size without rounding.
MONEY = DecimalType(38, 18)

# silver.trades: typed, validated, exactly one row per (exchange, product_id, trade_id).
SILVER_TRADES = TableDef(
    identifier="silver.trades",
    schema=Schema(
        NestedField(1, "exchange", StringType(), required=True),
        NestedField(2, "product_id", StringType(), required=True),
        NestedField(3, "trade_id", LongType(), required=True),
        NestedField(4, "price", MONEY, required=True),
        NestedField(5, "size", MONEY, required=True),
        NestedField(6, "side", StringType(), required=True, doc="taker side: buy | sell"),
        NestedField(7, "event_time", TimestamptzType(), required=True),
        NestedField(8, "receive_time", TimestamptzType(), required=True),
        NestedField(9, "ingest_time", TimestamptzType(), required=True),
        NestedField(10, "ingest_latency_ms", LongType(), required=True, doc="ingest_time - event_time"),
        NestedField(11, "sequence", LongType(), required=False),
        NestedField(12, "source", StringType(), required=True),
        NestedField(13, "kafka_topic", StringType(), required=True),
        NestedField(14, "kafka_partition", IntegerType(), required=True),
        NestedField(15, "kafka_offset", LongType(), required=True),
        # added by schema evolution (docs/iceberg.md): optional, so rows refined before it read NULL.
        # Splits the end-to-end latency at the broker: ingest_time - kafka_timestamp is how long a
        # trade waited in Kafka for the bronze writer (gold.ingestion_latency_1m's kafka_wait_*)
        NestedField(16, "kafka_timestamp", TimestamptzType(), required=False, doc="Kafka record time"),
    ),
    partition_spec=PartitionSpec(
        PartitionField(source_id=7, field_id=1000, transform=DayTransform(), name="event_day"),
    ),
    sort_order=SortOrder(
        SortField(source_id=2, transform=IdentityTransform()),
        SortField(source_id=7, transform=IdentityTransform()),
    ),
    properties={"write.parquet.compression-codec": "zstd", **MANIFEST_MERGE},
    doc="Typed, deduplicated, validated trades.",
)

# silver.trades_rejected: bronze rows that failed validation, as received, with the reason.
# One row per (kafka_topic, kafka_partition, kafka_offset).
SILVER_TRADES_REJECTED = TableDef(
    identifier="silver.trades_rejected",
    schema=Schema(
        NestedField(1, "exchange", StringType(), required=False),
        NestedField(2, "product_id", StringType(), required=False),
        NestedField(3, "trade_id", LongType(), required=False),
        NestedField(4, "price", StringType(), required=False),
        NestedField(5, "size", StringType(), required=False),
        NestedField(6, "side", StringType(), required=False),
        NestedField(7, "event_time", TimestamptzType(), required=False),
        NestedField(8, "ingest_time", TimestamptzType(), required=True),
        NestedField(9, "source", StringType(), required=False),
        NestedField(10, "raw", StringType(), required=False),
        NestedField(11, "kafka_topic", StringType(), required=True),
        NestedField(12, "kafka_partition", IntegerType(), required=True),
        NestedField(13, "kafka_offset", LongType(), required=True),
        NestedField(14, "reason", StringType(), required=True),
    ),
    partition_spec=PartitionSpec(
        PartitionField(source_id=8, field_id=1000, transform=DayTransform(), name="ingest_day"),
    ),
    sort_order=SortOrder(SortField(source_id=8, transform=IdentityTransform())),
    properties={"write.parquet.compression-codec": "zstd", **MANIFEST_MERGE},
    doc="Rows that failed silver validation, with the reason.",
)

# silver.trade_gaps: holes in an (exchange, product_id)'s consecutive trade ids as silver sees them.
# One row per hole, attributed to the hour of the first trade after it (so a hole is found once);
# ``open`` until every id is in silver (``filled``), or ``dead_lettered`` when the exchange did send
# those ids but they were refused (nothing to backfill). Small by nature: filled rows age out.
SILVER_TRADE_GAPS = TableDef(
    identifier="silver.trade_gaps",
    schema=Schema(
        NestedField(1, "exchange", StringType(), required=True),
        NestedField(2, "product_id", StringType(), required=True),
        NestedField(3, "hour", TimestamptzType(), required=True, doc="hour of the trade after the hole"),
        NestedField(4, "first_missing_id", LongType(), required=True),
        NestedField(5, "last_missing_id", LongType(), required=True),
        NestedField(6, "missing_count", LongType(), required=True, doc="ids still missing at the last check"),
        NestedField(7, "detected_at", TimestamptzType(), required=True),
        NestedField(8, "status", StringType(), required=True, doc="open | filled | dead_lettered"),
        NestedField(9, "filled_at", TimestamptzType(), required=False),
        NestedField(10, "checked_at", TimestamptzType(), required=True, doc="last re-check"),
    ),
    partition_spec=PartitionSpec(),
    sort_order=SortOrder(
        SortField(source_id=1, transform=IdentityTransform()),
        SortField(source_id=2, transform=IdentityTransform()),
        SortField(source_id=4, transform=IdentityTransform()),
    ),
    properties={"write.parquet.compression-codec": "zstd"},
    doc="Trade-id holes per product and hour, and whether they were filled.",
)

# bronze.reference_prices: reference-price events (CoinGecko, synthetic-coingecko) as received, plus
# Kafka lineage; the same exactly-once contract as bronze.trades (the same writer, another instance).
BRONZE_REFERENCE_PRICES = TableDef(
    identifier="bronze.reference_prices",
    schema=Schema(
        NestedField(1, "source", StringType(), required=True, doc="coingecko | synthetic-coingecko"),
        NestedField(2, "coin_id", StringType(), required=True, doc="the API's coin id, e.g. bitcoin"),
        NestedField(3, "vs_currency", StringType(), required=True, doc="quote currency, e.g. usd"),
        NestedField(4, "product_id", StringType(), required=True, doc="mapped by settings, e.g. BTC-USD"),
        NestedField(5, "price", StringType(), required=True, doc="decimal string as received"),
        NestedField(6, "event_time", TimestamptzType(), required=True, doc="the API's last_updated_at"),
        NestedField(7, "receive_time", TimestamptzType(), required=True, doc="poller receive time"),
        NestedField(8, "raw", StringType(), required=True, doc="the answer the price came from"),
        NestedField(9, "kafka_topic", StringType(), required=True),
        NestedField(10, "kafka_partition", IntegerType(), required=True),
        NestedField(11, "kafka_offset", LongType(), required=True),
        NestedField(12, "kafka_timestamp", TimestamptzType(), required=True),
        NestedField(13, "ingest_time", TimestamptzType(), required=True, doc="when the writer read it"),
    ),
    partition_spec=PartitionSpec(
        PartitionField(source_id=6, field_id=1000, transform=DayTransform(), name="event_day"),
        PartitionField(source_id=13, field_id=1001, transform=HourTransform(), name="ingest_hour"),
    ),
    sort_order=SortOrder(
        SortField(source_id=4, transform=IdentityTransform()),
        SortField(source_id=6, transform=IdentityTransform()),
    ),
    properties=dict(BRONZE_TRADES.properties),
    doc="Raw reference prices as received from Kafka; append-only.",
)

# silver.reference_prices: typed and validated, one row per (source, coin_id, vs_currency, event_time).
SILVER_REFERENCE_PRICES = TableDef(
    identifier="silver.reference_prices",
    schema=Schema(
        NestedField(1, "source", StringType(), required=True),
        NestedField(2, "coin_id", StringType(), required=True),
        NestedField(3, "vs_currency", StringType(), required=True),
        NestedField(4, "product_id", StringType(), required=True),
        NestedField(5, "price", MONEY, required=True),
        NestedField(6, "event_time", TimestamptzType(), required=True),
        NestedField(7, "receive_time", TimestamptzType(), required=True),
        NestedField(8, "ingest_time", TimestamptzType(), required=True),
        NestedField(9, "kafka_topic", StringType(), required=True),
        NestedField(10, "kafka_partition", IntegerType(), required=True),
        NestedField(11, "kafka_offset", LongType(), required=True),
    ),
    partition_spec=PartitionSpec(
        PartitionField(source_id=6, field_id=1000, transform=DayTransform(), name="event_day"),
    ),
    sort_order=SortOrder(
        SortField(source_id=4, transform=IdentityTransform()),
        SortField(source_id=6, transform=IdentityTransform()),
    ),
    properties={"write.parquet.compression-codec": "zstd", **MANIFEST_MERGE},
    doc="Typed, deduplicated, validated reference prices (positive price).",
)

TABLES: tuple[TableDef, ...] = (
    BRONZE_TRADES, SILVER_TRADES, SILVER_TRADES_REJECTED, SILVER_TRADE_GAPS,
    BRONZE_REFERENCE_PRICES, SILVER_REFERENCE_PRICES,
)  # fmt: skip
