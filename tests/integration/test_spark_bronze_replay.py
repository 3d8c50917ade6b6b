"""The Spark bronze stream's exactly-once on content: a replayed micro-batch adds nothing, even after
a compaction commit in between, because each batch keeps only what the table's current snapshot
does not record (the same offsets contract as the embedded writer).

Local PySpark has no Iceberg runtime here, so the append itself goes through pyiceberg with exactly
the rows and snapshot property ``write_batch`` hands Spark's ``writeTo``; the transform, the offsets
bookkeeping and the compaction that intervenes are the product's own.
"""

from __future__ import annotations

import dataclasses
import uuid

import orjson
import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from infrastructure.bootstrap import ensure_tables
from infrastructure.catalog import load_catalog
from infrastructure.tables import BRONZE_TRADES
from processing.bronze.progress import offsets_properties, table_offsets
from processing.bronze.rows import OFFSETS_PROPERTY, encode_offsets, merge_offsets
from processing.bronze.spark_stream import bronze_rows, next_offsets, parse_kafka_records, unwritten
from processing.maintenance import compact
from tests.fixtures.services import SeaweedFS, settings_for
from tests.unit.test_spark_bronze_transform import INGEST, KAFKA_SOURCE, trade


def kafka_batch(spark: SparkSession, topic: str, offsets: range):
    rows = [
        (b"coinbase:BTC-USD", orjson.dumps(trade(o)), topic, o % 2, o, INGEST.replace(tzinfo=None), 0)
        for o in offsets
    ]
    return spark.createDataFrame(rows, KAFKA_SOURCE)


def append_like_write_batch(table, spark_batch, recorded) -> int:
    """What ``write_batch`` does, with pyiceberg doing the append Spark's ``writeTo`` would do."""
    parsed = unwritten(parse_kafka_records(spark_batch, ingest_time=F.lit(INGEST)), recorded)
    rows = bronze_rows(parsed).toArrow()
    if rows.num_rows == 0:
        return 0
    offsets = merge_offsets(recorded, next_offsets(parsed))
    arrow = pa.Table.from_batches(rows.to_batches(), schema=rows.schema).cast(table.schema().as_arrow())
    table.append(arrow, snapshot_properties={OFFSETS_PROPERTY: encode_offsets(offsets)})
    return arrow.num_rows


def test_a_replayed_batch_after_a_compaction_adds_no_row(spark: SparkSession, seaweedfs: SeaweedFS) -> None:
    catalog = load_catalog(settings_for(seaweedfs=seaweedfs))
    ensure_tables(catalog)
    identifier = f"bronze.spark_replay_{uuid.uuid4().hex[:8]}"
    contract = dataclasses.replace(BRONZE_TRADES, identifier=identifier)
    ensure_tables(catalog, (contract,))
    table = catalog.load_table(identifier)
    topic = "spark.replay"

    first = kafka_batch(spark, topic, range(0, 10))
    assert append_like_write_batch(table, first, table_offsets(table)) == 10
    second = kafka_batch(spark, topic, range(10, 16))
    assert append_like_write_batch(table.refresh(), second, table_offsets(table)) == 6

    # an intervening commit by someone else: compaction rewrites the files, carrying the offsets
    ours = table.refresh().current_snapshot().snapshot_id
    assert compact(table, 2, offsets_properties).partitions_rewritten >= 1
    current = table.refresh().current_snapshot()
    assert current.snapshot_id != ours and OFFSETS_PROPERTY in current.summary.additional_properties

    # Spark replays the second batch (e.g. its checkpoint was behind), then one that overlaps it
    assert append_like_write_batch(table, second, table_offsets(table)) == 0
    overlapping = kafka_batch(spark, topic, range(13, 20))
    assert append_like_write_batch(table.refresh(), overlapping, table_offsets(table)) == 4

    offsets = table.refresh().scan(selected_fields=("kafka_partition", "kafka_offset")).to_arrow()
    pairs = list(
        zip(offsets["kafka_partition"].to_pylist(), offsets["kafka_offset"].to_pylist(), strict=True)
    )
    assert sorted(o for _, o in pairs) == list(range(20))  # one row per offset, none missing
    assert table_offsets(table) == {(topic, 0): 19, (topic, 1): 20}
