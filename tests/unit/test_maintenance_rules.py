"""Maintenance decisions: which partitions to compact, which snapshots to expire."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from processing import maintenance


def test_pure_decisions() -> None:
    assert maintenance.partitions_to_compact(Counter({(1,): 12, (2,): 3}), 10) == [(1,)]
    snaps = [(1, 100), (2, 200), (3, 300), (4, 400)]
    assert maintenance.snapshots_to_expire(snaps, current_id=4, older_than_ms=350, retain_last=2) == [2, 1]
    assert maintenance.snapshots_to_expire(snaps, current_id=4, older_than_ms=350, retain_last=5) == []


def test_expiry_never_touches_tagged_snapshots() -> None:
    snaps = [(1, 100), (2, 200), (3, 300), (4, 400), (5, 500)]
    assert maintenance.snapshots_to_expire(
        snaps, current_id=5, older_than_ms=None, retain_last=2, protected={2}
    ) == [3, 1]


def test_hour_tags_name_their_hour_and_age_out_after_the_retention() -> None:
    hour = datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert maintenance.tag_name(hour + timedelta(minutes=59)) == "hour-2026-12-01T10"
    assert maintenance.tag_hour("hour-2026-12-01T10") == hour
    assert maintenance.tag_hour("main") is None and maintenance.tag_hour("hour-yesterday") is None
    names = ["main", "audit", "hour-2026-12-01T07", "hour-2026-12-01T08", "hour-2026-12-01T09"]
    # 3 h retention at 12:30: hour 08 closed at 09:00, 3.5 h ago; hour 09 closed 2.5 h ago
    assert maintenance.tags_to_remove(
        names, datetime(2026, 12, 1, 12, 30, tzinfo=UTC), timedelta(hours=3)
    ) == [
        "hour-2026-12-01T07",
        "hour-2026-12-01T08",
    ]


def test_as_of_lands_on_the_newest_point_at_or_before_it() -> None:
    points = [(1, 1_000), (2, 5_000), (3, 9_000)]
    at = lambda ms: datetime.fromtimestamp(ms / 1000, UTC)  # noqa: E731
    assert maintenance.snapshot_as_of(points, at(5_000)) == 2
    assert maintenance.snapshot_as_of(points, at(8_999)) == 2
    assert maintenance.snapshot_as_of(points, at(999)) is None


def test_table_gauges_carry_the_bounds_and_step_times() -> None:
    hour = datetime(2026, 12, 1, 10, tzinfo=UTC)
    name = "bronze.trades"
    result = maintenance.HourlyResult(
        name, hour, maintenance.TagResult(name, "hour-2026-12-01T10"),
        maintenance.CompactionResult(name, 730, 11, 1, 90_000), maintenance.ExpiryResult(name, 30, 12),
        maintenance.OrphanResult(name, 900, ["a", "b"]), maintenance.TableStats(12, 3, 9, 11, 24_000),
        {"compact": 2.5, "orphans": 0.5},
    )  # fmt: skip
    registry = maintenance.table_registry(result, now=1_800_000_000.0)
    value = lambda metric, **labels: registry.get_sample_value(metric, {"table": name, **labels})  # noqa: E731
    assert value("lakehouse_table_snapshots") == 12 and value("lakehouse_table_manifests") == 9
    assert value("lakehouse_table_data_files") == 11 and value("lakehouse_table_metadata_bytes") == 24_000
    assert value("lakehouse_table_last_maintenance_timestamp_seconds") == 1_800_000_000.0
    assert value("lakehouse_maintenance_step_duration_seconds", step="compact") == 2.5
    assert result.metric_counts()["snapshots_expired"] == 18


def test_partition_filter_selects_one_day_and_hour_partition() -> None:
    """Bronze's spec after partition evolution: day(event_time), hour(ingest_time); a file written
    before the hour field existed has no hour value and is selected by its day alone."""
    from datetime import UTC, datetime

    import pyarrow as pa
    from pyiceberg.expressions.visitors import bind
    from pyiceberg.io.pyarrow import expression_to_pyarrow

    from infrastructure.tables import BRONZE_TRADES
    from processing.maintenance import partition_filter

    names = {f.field_id: f.name for f in BRONZE_TRADES.schema.fields}
    hour = int(datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp() // 3600)
    day = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() // 86400)
    at = [datetime(2026, 12, 1, h, m, tzinfo=UTC) for h, m in ((9, 59), (10, 30), (11, 0))]
    rows = pa.table({"event_time": [at[0]] * 3, "ingest_time": at}, schema=pa.schema(
        [("event_time", pa.timestamp("us", "UTC")), ("ingest_time", pa.timestamp("us", "UTC"))]))  # fmt: skip

    def selected(values: tuple) -> list[datetime]:
        expression = partition_filter(BRONZE_TRADES.partition_spec, names, values)
        arrow = expression_to_pyarrow(bind(BRONZE_TRADES.schema, expression, case_sensitive=True))
        return rows.filter(arrow)["ingest_time"].to_pylist()

    assert selected((day, hour)) == [at[1]]  # ingest hour 10 of that day
    assert selected((day, None)) == at  # the day alone
