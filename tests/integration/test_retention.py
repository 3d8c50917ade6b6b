"""Bounded retention on a real table, in simulated hours: snapshots, manifests and files stay under
their bounds, every closed hour is tagged and time travel to an old hour returns exactly its rows,
the bronze writer's Kafka offsets survive expiry and compaction; and exactly-once holds while the
writer is SIGKILLed with maintenance committing beside it."""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pyiceberg.exceptions import CommitFailedException

from infrastructure.catalog import load_catalog
from infrastructure.settings import MaintenanceSettings
from infrastructure.tables import BRONZE_TRADES
from processing import maintenance
from processing.bronze.progress import offsets_properties, table_offsets
from processing.bronze.rows import OFFSETS_PROPERTY, encode_offsets
from processing.duckdb_engine import connect
from processing.query import TimeTravelOutOfReach, resolve_as_of, time_travel_view
from tests.fixtures.bronze import BronzeEnv, produce_trades
from tests.fixtures.lakehouse import TOPIC, BronzeBuilder
from tests.fixtures.services import settings_for

HOURS, COMMITS_PER_HOUR, ROWS_PER_COMMIT = 4, 30, 7  # one commit per 2 simulated minutes
MERGE_AT = 8
POLICY = MaintenanceSettings(
    compact_min_files=5, snapshot_retention_hours=2, retain_last_snapshots=4, expire_every_commits=5,
    orphan_min_age_hours=0,
)  # fmt: skip
START = datetime(2026, 11, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def ids(table, snapshot_id: int | None = None) -> list[int]:
    return sorted(
        table.scan(snapshot_id=snapshot_id, selected_fields=("trade_id",)).to_arrow()["trade_id"].to_pylist()
    )


def test_bounded_structure_hourly_tags_and_time_travel(seaweedfs) -> None:
    settings = settings_for(seaweedfs=seaweedfs)
    catalog = load_catalog(settings)
    namespace = f"ret_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(namespace)
    table = catalog.create_table(
        f"{namespace}.trades", schema=BRONZE_TRADES.schema, partition_spec=BRONZE_TRADES.partition_spec,
        sort_order=BRONZE_TRADES.sort_order,
        properties={**BRONZE_TRADES.properties, "commit.manifest.min-count-to-merge": str(MERGE_AT)},
    )  # fmt: skip
    clock = Clock()
    retention = maintenance.StreamingRetention(POLICY, clock)
    rows = BronzeBuilder()
    before_hour: dict[int, list[int]] = {}  # hour index -> trade ids committed before it closed
    trade_id = 0
    for hour in range(HOURS):
        before_hour[hour - 1] = sorted(r["trade_id"] for r in rows.rows)
        for i in range(COMMITS_PER_HOUR):
            clock.now = START + timedelta(hours=hour, minutes=2 * i + 1)
            batch = [rows.add(trade_id + k, clock.now) for k in range(ROWS_PER_COMMIT)]
            trade_id += ROWS_PER_COMMIT
            offsets = {(TOPIC, 0): rows.next_offset[0]}
            retention.append(table, rows.arrow(batch), {OFFSETS_PROPERTY: encode_offsets(offsets)})
            if hour > 0 and i == 2:  # 5 minutes past: the DAG's run for the hour before
                result = maintenance.maintain_hour(table, settings.s3, POLICY, clock.now, offsets_properties)
                assert result.compaction.partitions_rewritten == 1  # the closed hour's 30 files
                assert result.tags.created is None  # the writer tagged the hour at its boundary
            stats = maintenance.table_stats(table)
            assert (
                stats.snapshots <= POLICY.retain_last_snapshots + POLICY.expire_every_commits + stats.tags + 2
            )
            assert stats.manifests <= MERGE_AT
            assert (
                stats.data_files <= COMMITS_PER_HOUR + i + 1 + hour
            )  # the hour before until compacted, this hour's appends, one file per compacted hour
        assert maintenance.table_stats(table).tags == min(hour, POLICY.snapshot_retention_hours)

    table.refresh()
    # tags for the hours inside the retention window; older ones dropped
    tags = {name for name in table.metadata.refs if name.startswith("hour-")}
    assert tags == {maintenance.tag_name(START + timedelta(hours=h)) for h in (1, 2)}
    # time travel to a closed hour: exactly the rows committed before it closed, by id and by time
    tag = table.metadata.refs[maintenance.tag_name(START + timedelta(hours=1))]
    assert ids(table, tag.snapshot_id) == before_hour[1]
    tagged_at = datetime.fromtimestamp(table.snapshot_by_id(tag.snapshot_id).timestamp_ms / 1000, UTC)
    con = connect(settings)
    # by time as `lakehouse query --as-of` resolves it: the boundary itself and a moment after it
    # (the snapshots in between are expired; the tag stands for the hour's close)
    by_time = [
        resolve_as_of(settings, f"{namespace}.trades", tagged_at + timedelta(milliseconds=d)) for d in (0, 1)
    ]
    assert by_time == [tag.snapshot_id] * 2
    for statement in time_travel_view(f"{namespace}.trades", tag.snapshot_id, None):
        con.execute(statement)
    got = sorted(r[0] for r in con.execute(f'SELECT trade_id FROM "{namespace}".trades').fetchall())
    assert got == before_hour[1]
    with pytest.raises(TimeTravelOutOfReach, match="before the oldest point"):
        resolve_as_of(settings, f"{namespace}.trades", START - timedelta(days=1))
    # the offsets survive compaction and expiry down to the current snapshot alone
    assert table_offsets(table) == {(TOPIC, 0): trade_id}
    maintenance.expire_snapshots(table, None, retain_last=1)
    table.refresh()
    assert len(table.snapshots()) == 1 + len(tags)
    assert table_offsets(table) == {(TOPIC, 0): trade_id}
    assert ids(table) == list(range(trade_id))


N_TRADES = 30_000
KILLS = 3
DEADLINE_S = 600


@pytest.fixture
def retention_env(bronze_env: BronzeEnv) -> BronzeEnv:
    """bronze_env with small flushes and aggressive retention: many commits, expiries, compactions."""
    bronze_env.settings = bronze_env.settings.model_copy(
        update={
            "bronze": bronze_env.settings.bronze.model_copy(
                update={"flush_rows": 1_000, "flush_seconds": 0.5}
            ),
            "maintenance": MaintenanceSettings(
                compact_min_files=2,
                retain_last_snapshots=3,
                expire_every_commits=2,
                # the test's maintenance runs an hour ahead (so the writer's current hour counts as
                # closed): this keeps unreferenced files younger than 3 real minutes, far longer
                # than any write in flight here
                orphan_min_age_hours=1.05,
            ),
        }
    )
    return bronze_env


def test_exactly_once_across_expiry_compaction_and_crashes(retention_env: BronzeEnv) -> None:
    env, rng = retention_env, random.Random(20261201)
    settings = env.settings
    produced = produce_trades(settings, N_TRADES)
    table = load_catalog(settings).load_table(BRONZE_TRADES.identifier)
    stop, runs, failures = threading.Event(), [], []

    def maintain_beside_the_writer() -> None:
        # the current hour counts as closed: its files (the writer's, right now) are compacted
        while not stop.is_set():
            try:
                runs.append(
                    maintenance.run_hourly(
                        settings, BRONZE_TRADES.identifier, datetime.now(UTC) + timedelta(hours=1)
                    )
                )
            except CommitFailedException as exc:  # lost five races in a row to the writer: try again
                failures.append(exc)

    deadline = time.monotonic() + DEADLINE_S
    thread = threading.Thread(target=maintain_beside_the_writer, daemon=True)
    thread.start()
    try:
        for _ in range(KILLS):
            proc = env.writer("--no-metrics")
            while time.monotonic() < deadline and not env.has_joined(proc):
                time.sleep(0.2)
            time.sleep(rng.uniform(1.0, 4.0))  # appends and maintenance commits interleave meanwhile
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        proc = env.writer("--no-metrics", "--idle-exit", "5")
        assert proc.wait(timeout=max(1, deadline - time.monotonic())) == 0
    finally:
        stop.set()
        thread.join(timeout=300)
    # maintenance really committed beside the writer: compactions of the hour it was writing
    compacted = sum(r.compaction.partitions_rewritten for r in runs)
    assert compacted, f"{len(runs)} maintenance runs, none compacted ({len(failures)} lost their races)"
    maintenance.run_hourly(settings, BRONZE_TRADES.identifier, datetime.now(UTC) + timedelta(hours=1))

    table.refresh()
    # bronze.trades is shared by every test of the session: this test's rows are its topic's
    rows = table.scan(
        row_filter=f"kafka_topic == '{settings.kafka.trades_topic}'", selected_fields=("kafka_partition", "kafka_offset")
    ).to_arrow()
    got = sorted(zip(rows["kafka_partition"].to_pylist(), rows["kafka_offset"].to_pylist(), strict=True))
    assert got == sorted(produced)  # one row per produced offset: nothing lost, nothing twice
    recorded = table_offsets(table)
    ends: dict[int, int] = {}
    for partition, offset in produced:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    assert {p: n for (t, p), n in recorded.items() if t == settings.kafka.trades_topic} == ends
    assert len(table.snapshots()) <= 3 + 2 + maintenance.table_stats(table).tags + 2
