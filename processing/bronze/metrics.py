"""Prometheus series of the bronze writer (served on ``settings.metrics.bronze_port``).

Names follow Prometheus conventions: ``lakehouse_bronze_`` prefix, base units, counters end in
``_total``; the only labels are the partition and an error kind (both low-cardinality).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclass
class BronzeMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    newest_event_epoch_s: float = math.nan

    def __post_init__(self) -> None:
        r = self.registry
        self.rows_written = Counter(
            "lakehouse_bronze_rows_written_total", "Trades appended to bronze.trades", registry=r
        )
        self.batches = Counter(
            "lakehouse_bronze_batches_total", "Appends committed to bronze.trades", registry=r
        )
        self.dead_letters = Counter(
            "lakehouse_bronze_dead_letters_total", "Messages on the trades topic sent to the DLQ", registry=r
        )
        self.conflicts = Counter(
            "lakehouse_bronze_commit_conflicts_total",
            "Table commits refused because another writer committed first (retried)",
            registry=r,
        )
        self.errors = Counter(
            "lakehouse_bronze_errors_total", "Errors by kind (consume, commit, dlq)", ["kind"], registry=r
        )
        self.resets = Counter(
            "lakehouse_bronze_log_resets_total",
            "Partitions found with a Kafka log that went backwards under bronze (recorded in the table)",
            registry=r,
        )
        self.reset_lost = Counter(
            "lakehouse_bronze_reset_lost_messages_total",
            "Messages a reset broker had acknowledged and lost before bronze read them (when known)",
            registry=r,
        )
        self.commit_duration = Histogram(
            "lakehouse_bronze_commit_duration_seconds",
            "Time to write and commit one bronze append (including conflict retries)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.table_snapshots = Gauge(
            "lakehouse_bronze_table_snapshots",
            "Snapshots retained by bronze.trades after this writer's last commit (bounded by retention)",
            registry=r,
        )
        self.lag = Gauge(
            "lakehouse_bronze_consumer_lag_messages",
            "High watermark minus the offset recorded in bronze, per partition",
            ["partition"],
            registry=r,
        )
        self.freshness = Gauge(
            "lakehouse_bronze_freshness_seconds",
            "Now minus the newest event time committed to bronze by this writer (NaN before the first)",
            registry=r,
        )
        self.freshness.set_function(lambda: time.time() - self.newest_event_epoch_s)

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)
