"""The bronze writer's metric names follow Prometheus conventions (prefix, base units, _total)."""

from __future__ import annotations

import math
import time

from prometheus_client import generate_latest

from processing.bronze.metrics import BronzeMetrics


def test_metric_names_and_freshness() -> None:
    metrics = BronzeMetrics()
    metrics.rows_written.inc(3)
    metrics.lag.labels("0").set(7)
    metrics.commit_duration.observe(0.2)
    text = generate_latest(metrics.registry).decode()
    for name in (
        "lakehouse_bronze_rows_written_total 3.0",
        "lakehouse_bronze_batches_total",
        "lakehouse_bronze_dead_letters_total",
        "lakehouse_bronze_commit_conflicts_total",
        "lakehouse_bronze_commit_duration_seconds_bucket",
        'lakehouse_bronze_consumer_lag_messages{partition="0"} 7.0',
        "lakehouse_bronze_freshness_seconds",
        "lakehouse_bronze_log_resets_total 0.0",
        "lakehouse_bronze_reset_lost_messages_total 0.0",
    ):
        assert name in text
    freshness = "lakehouse_bronze_freshness_seconds"
    assert math.isnan(metrics.registry.get_sample_value(freshness))  # nothing committed yet
    metrics.newest_event_epoch_s = time.time() - 60
    assert 59 < metrics.registry.get_sample_value(freshness) < 120
