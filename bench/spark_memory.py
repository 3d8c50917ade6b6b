"""Memory of the compose stack's silver job: the ``spark-submit`` JVM the Airflow scheduler's
LocalExecutor starts each hour, measured here on the same code with local PySpark.

The job is ``processing/silver/spark_batch.py``; its SQL runs in :func:`refine` on plain DataFrames,
which is what this runs (no Iceberg jars here: the table reads and the ``MERGE INTO`` are not
measured, the transform and its local checkpoints are). The session has the compose stack's
settings: ``local[2]`` and ``spark.driver.memory`` from ``infrastructure/spark/conf/spark-defaults.conf``.
For each size (trades in one hourly window; the default sizes are an hour at live Coinbase rates,
~25/s, and at 20x that, 500/s) it samples the RSS of the JVM and of this Python driver every 0.1 s and
prints the peaks against the scheduler's compose ``mem_limit`` (the JVM shares that container with
the scheduler and its other tasks). Baseline in the same run: the JVM's RSS right after start.

    python -m bench.spark_memory [--trades 90000 1800000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pyarrow.parquet as pq

from bench.compose_memory import compose_limits
from infrastructure.settings import Settings
from infrastructure.times import Window
from orchestration.local_stack import PRODUCTS, synthetic_trade
from processing.bronze.rows import Message, rows_to_arrow, to_row
from processing.silver import duckdb_runner
from processing.silver import spark_batch as silver_batch
from processing.silver.sql import Rules

DEFAULTS = Path(__file__).resolve().parents[1] / "infrastructure/spark/conf/spark-defaults.conf"
START = datetime(2026, 11, 30, 10, tzinfo=UTC)
CHUNK = 200_000  # rows per parquet write: the generator's own memory stays small


def spark_default(key: str) -> str:
    for line in DEFAULTS.read_text().splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] == key:
            return parts[1].strip()
    raise KeyError(key)


def write_bronze(path: Path, trades: int) -> None:
    """``trades`` bronze rows with ingest times spread over the window's hour, in parquet."""
    writer = None
    for first in range(0, trades, CHUNK):
        rows = []
        for i in range(first, min(trades, first + CHUNK)):
            at = START + timedelta(seconds=3600 * i / trades)
            trade = synthetic_trade(i, event_time=at - timedelta(milliseconds=300))  # then ingested at `at`
            message = Message("trades", i % 4, i // 4, int(at.timestamp() * 1000), trade.key, trade.to_wire())
            rows.append(to_row(trade, message, at))
        table = rows_to_arrow(rows)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


class Peaks(threading.Thread):
    """Peak RSS of the JVM (this process's java child) and of this Python process."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.me = psutil.Process()
        self.jvm = self.python = 0
        self.stop = threading.Event()

    def sample(self) -> None:
        self.python = max(self.python, self.me.memory_info().rss)
        for child in self.me.children(recursive=True):
            try:
                if "java" in child.name():
                    self.jvm = max(self.jvm, child.memory_info().rss)
            except psutil.Error:
                pass

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trades", type=int, nargs="+", default=[90_000, 1_800_000])
    args = parser.parse_args()
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    master, driver_memory = spark_default("spark.master"), spark_default("spark.driver.memory")
    print(
        f"cores {os.cpu_count()}, load avg {os.getloadavg()[0]:.1f}; {master}, driver memory {driver_memory}"
    )
    spark = (
        SparkSession.builder.master(master).appName("bench-spark-memory")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.shuffle.partitions", spark_default("spark.sql.shuffle.partitions"))
        .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )  # fmt: skip
    spark.sparkContext.setLogLevel("ERROR")
    peaks = Peaks()
    peaks.sample()
    started_jvm = peaks.jvm
    peaks.start()
    limit = compose_limits()["airflow-scheduler"]
    rules = Rules.from_settings(Settings(_env_file=None, products=PRODUCTS))  # every synthetic product
    window = Window(START, START + timedelta(hours=1))
    print(
        f"after start (baseline): JVM {started_jvm / 2**20:,.0f} MiB, Python driver "
        f"{peaks.python / 2**20:,.0f} MiB; scheduler limit {limit / 2**20:,.0f} MiB"
    )
    print(
        f"{'trades':>10} {'seconds':>8} {'JVM peak MiB':>13} {'x baseline':>11} {'python MiB':>11} {'of limit':>9}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        empty_silver, empty_rejected = Path(tmp, "silver.parquet"), Path(tmp, "rejected.parquet")
        pq.write_table(duckdb_runner.SILVER_ARROW.empty_table(), empty_silver)
        pq.write_table(duckdb_runner.REJECTED_ARROW.empty_table(), empty_rejected)
        for trades in args.trades:
            bronze = Path(tmp, f"bronze-{trades}.parquet")
            # generated in a child process, so this driver's RSS is Spark's, not the generator's
            child = multiprocessing.get_context("spawn").Process(target=write_bronze, args=(bronze, trades))
            child.start()
            child.join()
            assert child.exitcode == 0, f"generating {trades} bronze rows failed"
            peaks.jvm = peaks.python = 0
            began = time.perf_counter()
            out = silver_batch.refine(
                spark, spark.read.parquet(str(bronze)), spark.read.parquet(str(empty_silver)),
                spark.read.parquet(str(empty_rejected)), window, rules,
            )  # fmt: skip
            changed = out.changes.count()  # the rows the MERGE would write
            seconds = time.perf_counter() - began
            time.sleep(0.3)
            peaks.sample()
            assert changed == out.keys == trades, (changed, out.keys, trades)
            print(f"{trades:>10,} {seconds:>8.1f} {peaks.jvm / 2**20:>13,.0f} {peaks.jvm / started_jvm:>11.2f} "
                  f"{peaks.python / 2**20:>11,.0f} {(peaks.jvm + peaks.python) / limit:>9.2f}")  # fmt: skip
    peaks.stop.set()
    spark.stop()


if __name__ == "__main__":
    main()
