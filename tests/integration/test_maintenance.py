"""Maintenance on a real table with hundreds of small files: fewer files, same rows, time travel intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import fs as pafs
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.types import DecimalType, LongType, NestedField, TimestamptzType

from infrastructure.catalog import load_catalog
from infrastructure.tables import BRONZE_TRADES
from processing import maintenance
from tests.fixtures.services import settings_for

SMALL_FILES = 210
COMMITS = 7
DAYS = 3


@pytest.fixture(scope="module")
def fragmented(seaweedfs):
    """A day-partitioned table (bronze's layout) holding 210 one-row files from 7 commits.

    The files are written with pyarrow and registered with ``add_files`` in batches: the same
    fragmentation as 210 tiny appends at a fraction of the commits.
    """
    settings = settings_for(seaweedfs=seaweedfs)
    catalog = load_catalog(settings)
    catalog.create_namespace_if_not_exists("maint")
    schema = Schema(
        NestedField(1, "trade_id", LongType(), required=False),
        NestedField(2, "price", DecimalType(38, 18), required=False),
        NestedField(3, "event_time", TimestamptzType(), required=False),
    )
    day = BRONZE_TRADES.partition_spec.fields[0].transform
    spec = PartitionSpec(PartitionField(source_id=3, field_id=1000, transform=day, name="event_day"))
    table = catalog.create_table("maint.fragmented", schema=schema, partition_spec=spec)
    filesystem = maintenance.s3_filesystem(settings.s3)
    arrow_schema = pa.schema(
        [(f.name, f.type) for f in schema.as_arrow()]
    )  # no field ids: add_files maps by name
    start = datetime(2026, 11, 1, tzinfo=UTC)
    paths = []
    for i in range(SMALL_FILES):
        row = pa.table(
            {
                "trade_id": pa.array([i], pa.int64()),
                "price": pa.array([Decimal(f"{100 + i}.123456789012345678")], pa.decimal128(38, 18)),
                "event_time": pa.array(
                    [start + timedelta(days=i % DAYS, minutes=i)], pa.timestamp("us", tz="UTC")
                ),
            },
            schema=arrow_schema,
        )
        path = f"{table.location()}/data/small-{i:04d}.parquet"
        pq.write_table(row, path.removeprefix("s3://"), filesystem=filesystem)
        paths.append(path)
    batch = SMALL_FILES // COMMITS
    for i in range(COMMITS):
        table.add_files(paths[i * batch : (i + 1) * batch])
    return settings, table


def test_compaction_leaves_fewer_files_and_the_same_rows(fragmented) -> None:
    settings, table = fragmented
    rows_before = table.scan().to_arrow().sort_by("trade_id")
    old_snapshot = table.snapshots()[len(table.snapshots()) // 2]
    old_rows = table.scan(snapshot_id=old_snapshot.snapshot_id).to_arrow().num_rows

    result = maintenance.compact(table, min_files=10)

    assert result.files_before == SMALL_FILES
    assert result.files_after == DAYS  # one file per day partition
    assert result.partitions_rewritten == DAYS
    assert table.scan().to_arrow().sort_by("trade_id").equals(rows_before)
    # time travel to a snapshot before compaction still reads what it read then
    assert table.scan(snapshot_id=old_snapshot.snapshot_id).to_arrow().num_rows == old_rows

    # expire everything but the newest 3 snapshots, then delete what no snapshot references
    expiry = maintenance.expire_snapshots(table, datetime.now(UTC) + timedelta(seconds=1), retain_last=3)
    assert expiry.snapshots_after == 3 < expiry.snapshots_before
    table.refresh()
    for snapshot in table.snapshots():  # retained snapshots still readable
        table.scan(snapshot_id=snapshot.snapshot_id).to_arrow()
    referenced, _manifests = maintenance.referenced_files(table)
    orphans = maintenance.remove_orphan_files(
        table, settings.s3, older_than=datetime.now(UTC) + timedelta(seconds=1)
    )
    # exactly the unreferenced objects went: small files only expired snapshots used, their manifests
    assert orphans.orphans_deleted and not set(orphans.orphans_deleted) & referenced
    assert sum("/data/small-" in path for path in orphans.orphans_deleted) >= SMALL_FILES // DAYS
    remaining = maintenance.s3_filesystem(settings.s3).get_file_info(
        pafs.FileSelector(table.location().removeprefix("s3://"), recursive=True)
    )
    assert {info.path for info in remaining if info.type == pafs.FileType.File} <= referenced
    table.refresh()
    assert table.scan().to_arrow().sort_by("trade_id").equals(rows_before)
    for snapshot in table.snapshots():
        assert table.scan(snapshot_id=snapshot.snapshot_id).to_arrow().num_rows > 0


def test_tables_with_gc_disabled_are_left_to_their_catalog(fragmented) -> None:
    settings, table = fragmented
    with table.transaction() as tx:
        tx.set_properties({"gc.enabled": "false"})
    try:
        expiry = maintenance.expire_snapshots(table, datetime.now(UTC), retain_last=1)
        orphans = maintenance.remove_orphan_files(table, settings.s3, datetime.now(UTC))
        assert (
            "gc.enabled=false" in expiry.skipped_reason and expiry.snapshots_after == expiry.snapshots_before
        )
        assert "gc.enabled=false" in orphans.skipped_reason and not orphans.orphans_deleted
    finally:
        with table.transaction() as tx:
            tx.set_properties({"gc.enabled": "true"})
