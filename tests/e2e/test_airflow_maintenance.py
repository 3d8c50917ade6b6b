"""``airflow dags test crypto_maintenance`` on bronze with 200+ small files, written partly by the real
bronze writer: fewer files, the same rows, time travel to a retained snapshot, and the writer's Kafka
offsets carried into the compaction snapshot so a writer restarted after compaction and snapshot
expiry resumes exactly (no duplicate, nothing missing). The housekeeping task reaches SeaweedFS."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from infrastructure import services
from infrastructure.bootstrap import ensure_tables, ensure_topics
from infrastructure.catalog import load_catalog
from infrastructure.tables import BRONZE_TRADES
from processing.bronze.progress import table_offsets
from processing.maintenance import MAINTAINED_TABLES, data_files_per_partition, s3_filesystem
from tests.fixtures.airflow import dag_test_env, run_airflow, task_states
from tests.fixtures.bronze import BronzeEnv, produce_trades
from tests.fixtures.lakehouse import BRONZE_ARROW, BronzeBuilder
from tests.fixtures.services import launch_seaweedfs, settings_for

FIRST, SECOND = 300, 200  # trades through the writer before and after maintenance
SMALL_FILES = 200
WRITER_TIMEOUT_S = 180


def lineage(table, topic: str, snapshot_id: int | None = None) -> list[tuple]:
    rows = table.scan(
        snapshot_id=snapshot_id, selected_fields=("kafka_topic", "kafka_partition", "kafka_offset")
    )
    return sorted(
        (r["kafka_topic"], r["kafka_partition"], r["kafka_offset"])
        for r in rows.to_arrow().to_pylist()
        if topic is None or r["kafka_topic"] == topic
    )


def run_writer(env: BronzeEnv) -> None:
    proc = env.writer("--no-metrics", "--idle-exit", "4")
    assert proc.wait(timeout=WRITER_TIMEOUT_S) == 0


def test_maintenance_dag_compacts_bronze_and_the_writer_resumes_exactly(broker, tmp_path: Path) -> None:
    seaweedfs = launch_seaweedfs(tmp_path / "seaweedfs")
    try:
        suffix = uuid.uuid4().hex[:8]
        settings = settings_for(
            broker,
            seaweedfs,
            # SeaweedFS's own folder layout, so the DAG's housekeeping task reaches it with weed shell
            data_dir=tmp_path / "seaweedfs",
            stack={"seaweed_master_port": seaweedfs.master_port},
            kafka={"trades_topic": f"trades-{suffix}", "dlq_topic": f"dlq-{suffix}", "partitions": 2},
            bronze={"consumer_group": f"bronze-{suffix}", "flush_rows": 100, "flush_seconds": 1.0},
            metrics={"pushgateway_url": f"http://127.0.0.1:{services.free_port()}"},
            # expire everything but the newest 3 snapshots, delete unreferenced files at once
            maintenance={"compact_min_files": 10, "snapshot_retention_hours": 1e-9,
                         "retain_last_snapshots": 3, "orphan_min_age_hours": 0},
        )  # fmt: skip
        topic = settings.kafka.trades_topic
        ensure_topics(settings.kafka)
        catalog = load_catalog(settings)
        ensure_tables(catalog)
        writer_env = BronzeEnv(settings, tmp_path)
        produce_trades(settings, FIRST)
        run_writer(writer_env)
        table = catalog.load_table(BRONZE_TRADES.identifier)
        offsets = table_offsets(table)
        assert sum(offsets.values()) == FIRST
        writer_snapshots = {s.snapshot_id for s in table.snapshots()}

        # 200 one-row files in the writer's day partition, from another topic, in one commit
        # (add_files: 200 appends in one transaction take over a minute, their manifests pile up)
        filesystem = s3_filesystem(settings.s3)
        plain = pa.schema([pa.field(f.name, f.type, f.nullable) for f in BRONZE_ARROW])  # no field ids
        b = BronzeBuilder()
        ingest = datetime(2026, 11, 22, 5, tzinfo=UTC)
        paths = []
        for i in range(SMALL_FILES):
            row = pa.Table.from_pylist([b.add(i, ingest + timedelta(seconds=i))], schema=plain)
            paths.append(f"{table.location()}/data/small-{i:04d}.parquet")
            pq.write_table(row, paths[-1].removeprefix("s3://"), filesystem=filesystem)
        table.add_files(paths)
        table = catalog.load_table(BRONZE_TRADES.identifier)
        files_before = sum(data_files_per_partition(table).values())
        rows_before = lineage(table, None)
        before_id = table.current_snapshot().snapshot_id
        assert files_before >= SMALL_FILES and len(rows_before) == FIRST + SMALL_FILES

        home = tmp_path / "airflow"
        env = dag_test_env(settings, home)
        migrate = run_airflow(env, "db", "migrate")
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        # the run whose interval ends at 06:05 (``dags test`` takes that end as the run's date)
        # maintains the hour 05:00-06:00, the small files' hour
        run_at = (ingest + timedelta(hours=1, minutes=5)).isoformat()
        proc = run_airflow(env, "dags", "test", "crypto_maintenance", run_at)
        states = task_states(home, "crypto_maintenance")
        assert states == {
            "tables": "success",
            # one mapped task per maintained table (no gold built here: bronze, silver, references)
            **{f"maintain[{i}]": "success" for i in range(len(MAINTAINED_TABLES))},
            "housekeeping": "success",
        }, proc.stdout[-6000:] + proc.stderr[-3000:]
        assert "storage log: deleted" in proc.stdout + proc.stderr  # it reached SeaweedFS (not skipped)

        table = catalog.load_table(BRONZE_TRADES.identifier)
        assert sum(data_files_per_partition(table).values()) < files_before
        assert lineage(table, None) == rows_before
        retained = {s.snapshot_id for s in table.snapshots()}
        assert not retained & writer_snapshots  # the writer's own snapshots are expired...
        assert table_offsets(table) == offsets  # ...its offsets live on in the compaction snapshot
        assert before_id in retained and lineage(table, None, before_id) == rows_before  # time travel
        assert table.metadata.refs["hour-2026-11-22T05"].snapshot_id == before_id  # ...by the hour's tag

        produce_trades(settings, SECOND, start=FIRST)
        run_writer(writer_env)
        table = catalog.load_table(BRONZE_TRADES.identifier)
        got = lineage(table, topic)
        assert len(got) == len(set(got)) == FIRST + SECOND  # nothing twice, nothing missing
        assert sum(table_offsets(table).values()) == FIRST + SECOND
    finally:
        seaweedfs.stop()
