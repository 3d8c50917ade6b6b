"""Soak benchmark: bronze.trades run for simulated hours at live rates, with the hourly maintenance.

Compressed time on its own embedded stack (free ports, a temporary folder): a simulated clock
drives the rows' timestamps, the bronze writer's retention (hour tags, snapshot expiry) and the
maintenance's "now"; nothing sleeps. Each simulated 5 seconds one batch of ~125 trades (25/s across
4 products, one Kafka partition each) goes through the real bronze writer's append path
(``BronzeWriter.flush``: decode, offsets bookkeeping, append, retention), 720 commits per hour.
Five simulated minutes into each hour the maintenance runs exactly as the crypto_maintenance DAG
task does (``processing.maintenance.run_hourly`` on every maintained table, pushing its metrics).

Per simulated hour it prints commit p50/p95, a dashboard-like query and a ``count(*)`` through
``lakehouse query``'s DuckDB path (measured at the end of the hour, before maintenance: the most
files the hour sees), snapshots, manifests, data files, metadata.json bytes, bytes under the table
location, the maintenance's duration, and the storage: SeaweedFS's folder on disk, its volumes' live
bytes and its filer journal (purged by the DAG's ``housekeeping`` step, in simulated hours mapped
onto the wall-clock minutes the journal is written in). The last line is machine-readable:

    soak: hours=24 commits=17280 commit_p95_ratio=R1 commit_p95_vs_fresh=R3 query_ratio=R2 ...

``commit_p95_ratio``/``query_ratio``: last hour over first hour; ``commit_p95_vs_fresh``: last hour's
commit p95 over the p95 of the first 50 commits on the fresh table. ``--policy none`` runs the same
load with no retention and no maintenance (the "before" figures).

A busy machine moves every wall-clock figure, so each hour also measures a reference in the same
minute: 40 commits of the same batches through the same writer path into a fresh table of bronze's
shape, and the same ``count(*)`` on it. ``ref_commit_p95_ratio`` and ``ref_query_ratio`` are the
last hour's figures over that hour's reference, divided by the same for the first hour: a table that
gets slower with age raises them; a machine that gets busier does not.

    .venv/bin/python bench/soak.py [--hours 24] [--policy bounded|none]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyarrow import fs as pafs

from infrastructure import seaweed_log
from infrastructure.bootstrap import ensure_tables, ensure_topics
from infrastructure.catalog import load_catalog
from infrastructure.settings import Settings
from infrastructure.tables import BRONZE_TRADES
from orchestration.local_stack import bench_stack, synthetic_trade
from processing.bronze.rows import Batch, Consumed, Message
from processing.bronze.writer import BronzeWriter
from processing.duckdb_engine import connect
from processing.maintenance import (
    StreamingRetention,
    maintained_tables,
    run_hourly,
    run_housekeeping,
    s3_filesystem,
    table_stats,
)

PRODUCTS = 4
FRESH_COMMITS = 50
REFERENCE_COMMITS = 40  # per hour, into a fresh table: the same-minute baseline
REFERENCE_TABLE = "bench_soak.fresh"
DASHBOARD_SQL = """
    SELECT product_id, count(*) AS trades, max(event_time) AS newest,
           max(CAST(price AS DECIMAL(38, 18))) AS high
    FROM lake.bronze.trades
    WHERE event_time >= TIMESTAMPTZ '{since}'
    GROUP BY product_id ORDER BY product_id"""
COUNT_SQL = "SELECT count(*) FROM lake.bronze.trades"
REFERENCE_COUNT_SQL = f"SELECT count(*) FROM lake.{REFERENCE_TABLE}"


class SimulatedClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Load:
    """Batches as the consumer hands them to the writer: ~rate trades/s over PRODUCTS partitions."""

    def __init__(self, topic: str, rows_per_commit: int) -> None:
        self.topic, self.rows, self.next_id = topic, rows_per_commit, 0
        self.offsets = [0] * PRODUCTS

    def batch(self, now: datetime, interval: timedelta) -> Batch:
        messages = []
        for k in range(self.rows):
            i, partition = self.next_id, self.next_id % PRODUCTS
            event_time = now - interval + interval * (k / self.rows)
            trade = synthetic_trade(i, event_time=event_time)
            messages.append(
                Message(self.topic, partition, self.offsets[partition], 0, trade.key, trade.to_wire())
            )
            self.offsets[partition] += 1
            self.next_id += 1
        batch = Batch()
        batch.add(Consumed.of(messages), now, time.monotonic())
        return batch


def query_seconds(settings: Settings, sql: str) -> float:
    """One query the way ``lakehouse query`` runs it: a fresh connection, the catalog attached."""
    con = connect(settings)
    try:
        started = time.perf_counter()
        con.execute(sql).fetchall()
        return time.perf_counter() - started
    finally:
        con.close()


def bytes_under(filesystem: pafs.S3FileSystem, location: str) -> int:
    infos = filesystem.get_file_info(pafs.FileSelector(location.removeprefix("s3://"), recursive=True))
    return sum(i.size or 0 for i in infos if i.type == pafs.FileType.File)


def disk_bytes(folder: Path) -> int:
    """Bytes the folder takes on disk (``du``): SeaweedFS's volumes, filer store and indexes."""
    return sum(
        os.lstat(os.path.join(root, name)).st_blocks * 512
        for root, _, names in os.walk(folder)
        for name in names
    )


def reference(writer: BronzeWriter, catalog, topic: str, rows: int, now: datetime, interval: timedelta):
    """The same-minute baseline: REFERENCE_COMMITS flushes of the soak's batches through the writer's
    path into a fresh table of bronze's shape (dropped after), then ``count(*)`` on it. Returns the
    commit p95 and the count's seconds."""
    if catalog.table_exists(REFERENCE_TABLE):
        catalog.drop_table(REFERENCE_TABLE)
    writer.table = catalog.create_table(
        REFERENCE_TABLE, schema=BRONZE_TRADES.schema, partition_spec=BRONZE_TRADES.partition_spec,
        sort_order=BRONZE_TRADES.sort_order, properties=BRONZE_TRADES.properties,
    )  # fmt: skip
    writer.recorded = None
    load, commits = Load(topic, rows), []
    for i in range(REFERENCE_COMMITS):
        writer.batch = load.batch(now + i * interval, interval)
        started = time.perf_counter()
        writer.flush()
        commits.append(time.perf_counter() - started)
    count_s = query_seconds(writer.settings, REFERENCE_COUNT_SQL)
    catalog.drop_table(REFERENCE_TABLE)
    return percentile(commits, 0.95), count_s


def soak_line(hours: list[dict], all_commits: list[float]) -> str:
    fresh = percentile(all_commits[:FRESH_COMMITS], 0.95)
    first, last = hours[0], hours[-1]
    query_first, query_last = first["dash"] + first["count"], last["dash"] + last["count"]
    ref_commit = (last["p95"] / last["ref_p95"]) / (first["p95"] / first["ref_p95"])
    ref_query = (last["count"] / last["ref_count"]) / (first["count"] / first["ref_count"])
    return (
        f"hours={len(hours)} commits={len(all_commits)} "
        f"commit_p95_ratio={last['p95'] / first['p95']:.2f} commit_p95_vs_fresh={last['p95'] / fresh:.2f} "
        f"query_ratio={query_last / query_first:.2f} "
        f"ref_commit_p95_ratio={ref_commit:.2f} ref_query_ratio={ref_query:.2f} "
        f"commit_p95_vs_same_hour_fresh={last['p95'] / last['ref_p95']:.2f} "
        f"snapshots_max={max(h['stats'].snapshots for h in hours)} "
        f"files_max={max(h['stats'].data_files for h in hours)} "
        f"maintenance_max_s={max(h['maint'] for h in hours):.1f} "
        f"storage_mb_max={max(h['disk'] for h in hours) / 1e6:.0f} storage_mb_last={last['disk'] / 1e6:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--trades-per-second", type=float, default=25.0)
    parser.add_argument("--commit-seconds", type=float, default=5.0)
    parser.add_argument("--policy", choices=("bounded", "none"), default="bounded")
    args = parser.parse_args()
    interval = timedelta(seconds=args.commit_seconds)
    per_hour = int(3600 / args.commit_seconds)
    rows_per_commit = round(args.trades_per_second * args.commit_seconds)

    workdir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    print(f"stack under {workdir} (cores: {os.cpu_count()}, load avg {os.getloadavg()[0]:.1f}); "
          f"{args.hours} h x {per_hour} commits of {rows_per_commit} rows, policy {args.policy}")  # fmt: skip
    with bench_stack(workdir / "lake", kafka={"partitions": PRODUCTS}) as settings:
        ensure_topics(settings.kafka)
        catalog = load_catalog(settings)
        ensure_tables(catalog)
        # simulated time starts at the next wall-clock hour and runs faster: the orphan step compares
        # its "now" with the objects' real modification times, which must never be in its future
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        clock = SimulatedClock(start)
        policy = settings.maintenance
        if args.policy == "none":  # never expire, never tag: pyiceberg's defaults, as before
            policy = policy.model_copy(update={"expire_every_commits": 10**9})
        writer = BronzeWriter(settings, retention=StreamingRetention(policy, clock))
        if args.policy == "none":
            with writer.table.transaction() as tx:  # fast append, one manifest per commit
                tx.set_properties({"commit.manifest-merge.enabled": "false"})
        table = writer.table
        load = Load(settings.kafka.trades_topic, rows_per_commit)
        catalog.create_namespace_if_not_exists(REFERENCE_TABLE.split(".")[0])
        ref_writer = BronzeWriter(settings, retention=StreamingRetention(policy, clock))
        filesystem = s3_filesystem(settings.s3)
        all_commits: list[float] = []
        steps = ""
        hours: list[dict] = []
        # the storage journal is written in wall-clock minutes: the wall-clock time each simulated
        # hour began maps the purge's simulated cutoff onto it
        wall_at_hour: list[datetime] = []
        retention_hours = settings.maintenance.storage_log_retention_hours
        print("hour  commit_p50_ms commit_p95_ms ref_p95_ms dash_q_s count_s ref_count_s  snapshots "
              "manifests files metadata_kb table_mb maint_s  disk_mb volumes_mb log_mb  wall_s")  # fmt: skip
        for hour in range(args.hours):
            wall = time.perf_counter()
            wall_at_hour.append(datetime.now(UTC))
            commits, maintenance_s = [], 0.0
            for i in range(per_hour):
                clock.now = start + hour * timedelta(hours=1) + (i + 1) * interval
                writer.batch = load.batch(clock.now, interval)
                started = time.perf_counter()
                writer.flush()
                commits.append(time.perf_counter() - started)
                if args.policy == "bounded" and i == 60:  # 5 minutes past: the DAG's schedule
                    started = time.perf_counter()
                    for identifier in maintained_tables(catalog):
                        result = run_hourly(settings, identifier, clock.now)
                        if identifier == "bronze.trades":
                            steps = " ".join(f"{k}={v:.2f}" for k, v in result.step_seconds.items())
                    # the DAG's housekeeping: the journal of the simulated hours before the
                    # retention window (whole hours: never closer than the setting)
                    cutoff_hour = max(0, hour - math.ceil(retention_hours))
                    run_housekeeping(settings, clock.now, journal_older_than=wall_at_hour[cutoff_hour])
                    maintenance_s = time.perf_counter() - started
                    writer.recorded = None  # as after any foreign commit (the append would find out)
            all_commits += commits
            since = (clock.now - timedelta(hours=1)).isoformat()
            dash_s = query_seconds(settings, DASHBOARD_SQL.format(since=since))
            count_s = query_seconds(settings, COUNT_SQL)
            ref_p95, ref_count = reference(
                ref_writer, catalog, settings.kafka.trades_topic, rows_per_commit, clock.now, interval
            )
            table.refresh()
            stats = table_stats(table)
            volumes, garbage = seaweed_log.volume_bytes(settings)
            journal = sum(f.size for f in seaweed_log.log_files(settings))
            row = {
                "p50": statistics.median(commits), "p95": percentile(commits, 0.95), "dash": dash_s,
                "count": count_s, "stats": stats, "maint": maintenance_s,
                "bytes": bytes_under(filesystem, table.location()), "ref_p95": ref_p95,
                "ref_count": ref_count, "disk": disk_bytes(seaweed_log.seaweed_dir(settings)),
                "volumes": volumes - garbage, "journal": journal,
            }  # fmt: skip
            hours.append(row)
            print(f"{hour + 1:>4}  {row['p50'] * 1e3:>13.0f} {row['p95'] * 1e3:>13.0f} {ref_p95 * 1e3:>10.0f} "
                  f"{dash_s:>8.3f} {count_s:>7.3f} {ref_count:>11.3f}  {stats.snapshots:>9} "
                  f"{stats.manifests:>9} {stats.data_files:>5} "
                  f"{stats.metadata_bytes / 1024:>11.0f} {row['bytes'] / 2**20:>8.1f} {maintenance_s:>7.2f} "
                  f"{row['disk'] / 1e6:>8.0f} {row['volumes'] / 1e6:>10.0f} {journal / 1e6:>6.0f} "
                  f"{time.perf_counter() - wall:>7.1f}  {steps}", flush=True)  # fmt: skip
            # the same figures so far, so a run cut short still reports its trend
            fresh_ms = percentile(all_commits[:FRESH_COMMITS], 0.95) * 1e3
            print(f"   so far (fresh p95 {fresh_ms:.0f} ms): {soak_line(hours, all_commits)}", flush=True)
        print("soak: " + soak_line(hours, all_commits))


if __name__ == "__main__":
    main()
