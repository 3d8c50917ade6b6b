"""Benchmark: Kafka -> bronze.trades with the embedded bronze writer, against baselines in the same run.

Starts its own embedded stack on free ports in a temporary folder (a user stack may be running),
produces N synthetic trades, then measures:
  1. raw consume of the topic (confluent-kafka, a consumer group, values touched) - baseline A
  2. raw pyiceberg append of the same rows as Arrow (pre-built, 50k per append) - baseline B
  3. the bronze writer (parse, validate, build Arrow, append with offsets, exactly-once bookkeeping)
and prints rows/s, the ratio to the slower baseline, files and snapshots created, then
end-to-end freshness (event time -> committed to bronze) at a steady 5,000 trades/s with the
writer as its own process, and the peak RSS of the whole embedded stack (services + writer).

    .venv/bin/python bench/bronze.py [--trades 1000000] [--steady-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
from confluent_kafka import Consumer, Producer

from infrastructure import services, supervisor
from infrastructure.bootstrap import ensure_tables, ensure_topics
from infrastructure.catalog import load_catalog
from infrastructure.kafka import consumer_config, producer_config
from infrastructure.settings import Settings, to_environment
from infrastructure.tables import BRONZE_TRADES
from orchestration.local_stack import bench_stack, produce, synthetic_trade
from processing.bronze.progress import table_offsets
from processing.bronze.rows import OFFSETS_PROPERTY, Batch, Consumed, Message, decode_offsets
from processing.bronze.writer import FETCH_LIMITS, BronzeWriter

APPEND_ROWS = 50_000


class RssSampler(threading.Thread):
    """Peak of the summed RSS of the given processes (and their children), and each one's own peak,
    sampled every 0.25 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.pids: dict[int, str] = {}
        self.peak = 0
        self.peaks: dict[str, int] = {}
        self.latest: dict[str, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            total = 0
            for pid, name in list(self.pids.items()):
                try:
                    proc = psutil.Process(pid)
                    rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(True))
                except psutil.Error:
                    continue
                total += rss
                self.peaks[name] = max(self.peaks.get(name, 0), rss)
                self.latest[name] = rss
            self.peak = max(self.peak, total)

    def report(self) -> str:
        return ", ".join(f"{name} {rss / 2**20:,.0f}" for name, rss in sorted(self.peaks.items()))


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else float("nan")


class Clock:
    """Wall time and this process's CPU time (all threads, librdkafka's included) since start: CPU
    per row is far less sensitive than wall time to other work on a shared machine."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def measure(self, rows: int) -> tuple[float, float]:
        """(rows/s, CPU µs per row)."""
        cpu = time.process_time() - self.cpu
        return rate(rows, time.perf_counter() - self.wall), cpu / rows * 1e6 if rows else float("nan")


def raw_consume(settings: Settings, n: int) -> tuple[float, float]:
    consumer = Consumer(consumer_config(settings.kafka, "bench-raw-consume", **FETCH_LIMITS))  # as the writer
    consumer.subscribe([settings.kafka.trades_topic])
    seen, size, clock = 0, 0, Clock()
    try:
        while seen < n:
            for m in consumer.consume(num_messages=5_000, timeout=1.0):
                if m.error() is None:
                    seen += 1
                    size += len(m.value())
    finally:
        consumer.close()
    return clock.measure(seen)


def raw_append(settings: Settings, n: int) -> tuple[float, float]:
    """pyiceberg appends of pre-built Arrow batches (same rows, same schema and partitioning)."""
    catalog = load_catalog(settings)
    catalog.create_namespace_if_not_exists("bench")
    table = catalog.create_table(
        "bench.raw_append",
        schema=BRONZE_TRADES.schema,
        partition_spec=BRONZE_TRADES.partition_spec,
        properties=BRONZE_TRADES.properties,
    )
    now = datetime.now(UTC)
    arrows = []
    for start in range(0, n, APPEND_ROWS):
        batch = Batch()
        ids = range(start, min(n, start + APPEND_ROWS))
        batch.add(
            Consumed.of([Message("t", 0, i, 0, None, synthetic_trade(i).to_wire()) for i in ids]), now, 0.0
        )
        arrows.append(batch.to_arrow())
    clock = Clock()
    for arrow in arrows:
        table.append(arrow)
    return clock.measure(n)


def bronze_throughput(settings: Settings, n: int) -> tuple[float, float, int, int]:
    """The writer in a thread of this process; its CPU per row includes this thread's polling of the
    table once a second."""
    table = load_catalog(settings).load_table(BRONZE_TRADES.identifier)
    writer = BronzeWriter(settings)
    stop = threading.Event()
    clock = Clock()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    thread.start()
    while sum(table_offsets(table.refresh()).values()) < n:
        time.sleep(1.0)  # the writer shares this interpreter: poll gently
    rows_per_s, cpu_us = clock.measure(n)
    stop.set()
    thread.join(60)
    table.refresh()
    summary = table.current_snapshot().summary.additional_properties
    return rows_per_s, cpu_us, len(table.snapshots()), int(summary.get("total-data-files", 0))


def steady_freshness(settings: Settings, workdir: Path, per_s: int, seconds: float, sampler: RssSampler):
    """Produce at ``per_s`` with event time = now; freshness of a row = commit time of the snapshot
    whose offsets first cover it minus its event time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env.update(to_environment(settings))
    log = (workdir / "writer.log").open("wb")
    writer = subprocess.Popen(
        [services.venv_bin("lakehouse"), "bronze"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    sampler.pids[writer.pid] = "writer"
    table = load_catalog(settings).load_table(BRONZE_TRADES.identifier)
    start_offsets = table_offsets(table.refresh())
    producer = Producer(producer_config(settings.kafka))  # as the ingestion producer sends
    time.sleep(8)  # let the writer join the group before the clock starts
    sent, i0, started = 0, 10_000_000, time.monotonic()
    while time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * per_s)
        while sent < due:
            trade = synthetic_trade(i0 + sent, event_time=datetime.now(UTC))
            producer.produce(settings.kafka.trades_topic, value=trade.to_wire(), key=trade.key)
            sent += 1
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(30)
    target = sum(start_offsets.values()) + sent
    deadline = time.monotonic() + 60
    while sum(table_offsets(table.refresh()).values()) < target and time.monotonic() < deadline:
        time.sleep(0.5)
    writer.terminate()
    writer.wait(60)
    sampler.pids.pop(writer.pid, None)

    snapshots = [
        (s.timestamp_ms / 1000, decode_offsets(s.summary.additional_properties[OFFSETS_PROPERTY]))
        for s in table.snapshots()
        if s.summary and OFFSETS_PROPERTY in s.summary.additional_properties
    ]
    snapshots.sort()
    rows = (
        table.scan(
            row_filter="trade_id >= 10000000",
            selected_fields=("kafka_partition", "kafka_offset", "event_time"),
        )
        .to_arrow()
        .to_pylist()
    )
    topic = settings.kafka.trades_topic
    lags = []
    for r in rows:
        commit = next(
            ts for ts, offs in snapshots if offs.get((topic, r["kafka_partition"]), 0) > r["kafka_offset"]
        )
        lags.append(commit - r["event_time"].timestamp())
    lags.sort()
    return sent, len(rows), statistics.median(lags), lags[int(0.95 * (len(lags) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--steady-rate", type=int, default=5_000)
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-bronze-"))
    print(f"stack under {workdir} (cores: {os.cpu_count()}, load avg {os.getloadavg()[0]:.1f})")
    sampler = RssSampler()
    # free ports, picked again if another program takes one first; stopped however the run ends
    with bench_stack(workdir / "lake") as settings:
        try:
            sampler.pids.update({s.pid: s.name for s in supervisor.status(settings) if s.pid})
            sampler.start()
            ensure_topics(settings.kafka)
            ensure_tables(load_catalog(settings))

            started = time.perf_counter()
            produce(settings, ((t.key, t.to_wire()) for t in map(synthetic_trade, range(args.trades))))
            print(f"produced {args.trades:,} trades in {time.perf_counter() - started:.1f} s")
            time.sleep(1.0)  # a fresh sample: noida-db keeps the topic in memory
            print(
                f"  broker RSS at rest with them in the topic: {sampler.latest.get('kafka', 0) / 2**20:,.0f} MiB"
            )

            consume_rate, consume_cpu = raw_consume(settings, args.trades)
            print(
                f"baseline A  raw consume          {consume_rate:>10,.0f} rows/s  {consume_cpu:6.2f} CPU µs/row"
            )
            print(f"  broker RSS peak so far: {sampler.peaks.get('kafka', 0) / 2**20:,.0f} MiB")
            append_rate, append_cpu = raw_append(settings, args.trades)
            print(
                f"baseline B  raw pyiceberg append {append_rate:>10,.0f} rows/s  {append_cpu:6.2f} CPU µs/row"
            )
            bronze_rate, bronze_cpu, snapshots, files = bronze_throughput(settings, args.trades)
            slower = min(consume_rate, append_rate)
            print(
                f"bronze      writer               {bronze_rate:>10,.0f} rows/s  {bronze_cpu:6.2f} CPU µs/row"
            )
            print(f"ratio to the slower baseline     {bronze_rate / slower:>10.2f}")
            print(
                f"created: {snapshots} snapshots, {files} data files (flush_rows {settings.bronze.flush_rows:,})"
            )
            print(
                f"peak RSS of the services so far  {sampler.peak / 2**20:>10,.0f} MiB (writer ran in-process)"
            )

            print(f"  per service peak MiB: {sampler.report()}")
            sampler.peak, sampler.peaks = 0, {}
            sent, seen, p50, p95 = steady_freshness(
                settings, workdir, args.steady_rate, args.steady_seconds, sampler
            )
            print(
                f"steady {args.steady_rate:,}/s for {args.steady_seconds:.0f} s: sent {sent:,}, in bronze {seen:,}; "
                f"freshness p50 {p50:.2f} s, p95 {p95:.2f} s (flush_seconds {settings.bronze.flush_seconds})"
            )
            print(f"peak RSS of the embedded stack (services + writer) {sampler.peak / 2**20:,.0f} MiB")
            print(f"  per process peak MiB: {sampler.report()}")
        finally:
            sampler.stop.set()


if __name__ == "__main__":
    main()
