"""Partition pruning benchmark: what one hourly silver run reads from bronze, with bronze partitioned
by day(event_time) only (the previous spec, the baseline) and with hour(ingest_time) added (the
contract's spec after partition evolution).

    .venv/bin/python -m bench.partition_pruning --hours 12 --commits-per-hour 20 --rows-per-commit 1000

Both tables get the same rows in the same appends (the bronze writer's shape: a file per commit
and event day, 1 % late trades from the previous day), and every closed hour but the newest is
compacted as hourly maintenance does (``compact_hour``). Then silver's own bronze selection
(:func:`processing.silver.sql.checked_sql`) runs through DuckDB for two windows: the newest closed
hour (not compacted yet: what the silver run right after the hour sees) and a compacted one.
DuckDB's HTTP log is the measure: data files and bytes fetched, manifests fetched. Also printed:
the files pyiceberg plans for the same filter (partition and column-statistics pruning) and the
files the partition values alone select (the guarantee a spec gives whatever the statistics).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.table import Table
from pyiceberg.transforms import HourTransform

from infrastructure.bootstrap import ensure_tables
from infrastructure.catalog import load_catalog
from infrastructure.tables import BRONZE_TRADES
from infrastructure.times import Window
from orchestration.local_stack import launch_seaweedfs, settings_for
from processing.duckdb_engine import connect
from processing.maintenance import compact_hour, hour_filter
from processing.silver.sql import Rules, checked_sql, to_dialect

START = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD")
DAY_ONLY = dataclasses.replace(
    BRONZE_TRADES,
    identifier="bench.trades_day_only",
    partition_spec=PartitionSpec(
        *(p for p in BRONZE_TRADES.partition_spec.fields if not isinstance(p.transform, HourTransform))
    ),
)
EVOLVED = dataclasses.replace(BRONZE_TRADES, identifier="bench.trades_evolved")


def batch(commit: int, ingest: datetime, rows: int, rng: np.random.Generator) -> pa.Table:
    """One writer commit: ``rows`` trades ingested over 3 s from ``ingest``; 1 % from yesterday."""
    base = commit * rows
    offsets = rng.integers(0, 3_000_000, rows)
    ingest_us = int(ingest.timestamp() * 1e6) + offsets
    lateness = np.where(rng.random(rows) < 0.01, 86_400_000_000, 250_000)
    event_us = ingest_us - lateness
    stamp = pa.timestamp("us", "UTC")
    return pa.table(
        {
            "exchange": ["coinbase"] * rows,
            "product_id": [PRODUCTS[i % len(PRODUCTS)] for i in range(rows)],
            "trade_id": pa.array(np.arange(base, base + rows), pa.int64()),
            "price": [f"{1000 + i % 97}.{i % 100:02d}" for i in range(rows)],
            "size": [f"0.{i % 9973 + 1:08d}" for i in range(rows)],
            "side": [("buy", "sell")[i % 2] for i in range(rows)],
            "event_time": pa.array(event_us, pa.int64()).cast(stamp),
            "receive_time": pa.array(event_us + 40_000, pa.int64()).cast(stamp),
            "sequence": pa.nulls(rows, pa.int64()),
            "source": ["ws"] * rows,
            "raw": ['{"type":"match"}'] * rows,
            "kafka_topic": ["crypto.trades"] * rows,
            "kafka_partition": pa.array([i % 3 for i in range(rows)], pa.int32()),
            "kafka_offset": pa.array(np.arange(base, base + rows), pa.int64()),
            "kafka_timestamp": pa.array(event_us + 45_000, pa.int64()).cast(stamp),
            "ingest_time": pa.array(ingest_us, pa.int64()).cast(stamp),
        }
    ).cast(BRONZE_TRADES.schema.as_arrow())


def partition_selected(table: Table, window: Window) -> int:
    """Data files whose partition values alone could hold a row of ``window`` (no statistics)."""
    hour = int(window.start.timestamp() // 3600)
    count = 0
    for row in table.inspect.files().to_pylist():
        part = row["partition"] or {}
        count += "ingest_hour" not in part or part["ingest_hour"] == hour
    return count


def measured_read(settings, table: str, window: Window, rules: Rules) -> dict[str, int]:
    """Silver's bronze selection for ``window`` on a fresh connection, as DuckDB fetched it."""
    con = connect(settings)
    con.execute("SET enable_progress_bar = false")
    con.execute("CALL enable_logging('HTTP')")
    query = to_dialect(checked_sql(f"lake.{table}", window, rules), "duckdb")
    (rows,) = con.execute(f"SELECT count(*) FROM ({query})").fetchone()
    fetched = con.execute(
        """SELECT request.url, CAST(response.headers['Content-Length'] AS BIGINT)
           FROM duckdb_logs_parsed('HTTP') WHERE request.type = 'GET'"""
    ).fetchall()
    data = [(url, n or 0) for url, n in fetched if url.endswith(".parquet")]
    manifests = [url for url, _ in fetched if url.endswith(".avro")]
    con.close()
    return {
        "rows": rows,
        "files": len({u for u, _ in data}),
        "bytes": sum(n for _, n in data),
        "manifests": len(set(manifests)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=int, default=12)
    parser.add_argument("--commits-per-hour", type=int, default=20)
    parser.add_argument("--rows-per-commit", type=int, default=1000)
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # a kill (a CI timeout) ends Python without ``finally``: exit instead, so SeaweedFS is stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with tempfile.TemporaryDirectory(prefix="bench-pruning-") as root:
        store = launch_seaweedfs(Path(root))
        try:
            settings = settings_for(seaweedfs=store, products=list(PRODUCTS))
            catalog = load_catalog(settings)
            catalog.create_namespace_if_not_exists("bench")
            ensure_tables(catalog, (DAY_ONLY, EVOLVED))
            tables = {
                name: catalog.load_table(c.identifier)
                for name, c in (("day", DAY_ONLY), ("evolved", EVOLVED))
            }
            rng = np.random.default_rng(7)
            commit = 0
            for hour in range(args.hours):
                start = START + hour * HOUR
                for i in range(args.commits_per_hour):
                    data = batch(commit, start + i * HOUR / args.commits_per_hour, args.rows_per_commit, rng)
                    for table in tables.values():
                        table.append(data)
                    commit += 1
                if hour < args.hours - 1:  # maintenance compacts a closed hour; the newest is not yet
                    for table in tables.values():
                        compact_hour(table, start, min_files=2)
            rules = Rules.from_settings(settings)
            cases = {
                "newest closed hour (not compacted)": Window(START + (args.hours - 1) * HOUR, START + args.hours * HOUR),
                "a compacted hour": Window(START + (args.hours // 2) * HOUR, START + (args.hours // 2 + 1) * HOUR),
            }  # fmt: skip
            for table in tables.values():
                table.refresh()
            total = {n: len(t.inspect.files()) for n, t in tables.items()}
            print(f"bronze: {args.hours} h x {args.commits_per_hour} commits x {args.rows_per_commit} rows;"
                  f" data files: day-only {total['day']}, evolved {total['evolved']}")  # fmt: skip
            for label, window in cases.items():
                read = {n: measured_read(settings, t.identifier, window, rules) for n, t in
                        (("day", DAY_ONLY), ("evolved", EVOLVED))}  # fmt: skip
                assert read["day"]["rows"] == read["evolved"]["rows"], read
                planned = {
                    n: sum(
                        1 for _ in t.scan(row_filter=hour_filter("ingest_time", window.start)).plan_files()
                    )
                    for n, t in tables.items()
                }
                by_partition = {n: partition_selected(t, window) for n, t in tables.items()}
                day, evolved = read["day"], read["evolved"]
                print(f"\n{label} {window.start:%Y-%m-%dT%H}: {day['rows']} rows")
                print(f"  DuckDB data files read   day-only {day['files']:>6}  evolved {evolved['files']:>6}"
                      f"  ratio {day['files'] / max(evolved['files'], 1):.2f}")  # fmt: skip
                print(f"  DuckDB data bytes read   day-only {day['bytes']:>6}  evolved {evolved['bytes']:>6}"
                      f"  ratio {day['bytes'] / max(evolved['bytes'], 1):.2f}")  # fmt: skip
                print(
                    f"  DuckDB manifests read    day-only {day['manifests']:>6}  evolved {evolved['manifests']:>6}"
                )
                print(
                    f"  pyiceberg planned files  day-only {planned['day']:>6}  evolved {planned['evolved']:>6}"
                )
                print(f"  by partition value only  day-only {by_partition['day']:>6}  evolved {by_partition['evolved']:>6}"
                      f"  ratio {by_partition['day'] / max(by_partition['evolved'], 1):.2f}")  # fmt: skip
        finally:
            store.stop()
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
