"""Per-run metrics of batch jobs (silver, gold, quality, maintenance), pushed to a Pushgateway.

Batch jobs end before Prometheus could scrape them, so each run pushes its figures under the
grouping key ``job=<name>`` and Prometheus scrapes the gateway. Names follow Prometheus
conventions: ``lakehouse_job_*``, base units, only low-cardinality labels (job, kind, table).
An unreachable gateway is logged and ignored: metrics must never fail the pipeline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from infrastructure.settings import Settings

log = logging.getLogger(__name__)


def build_registry(
    job: str,
    success: bool,
    duration_s: float,
    counts: Mapping[str, float] | None = None,
    window_end: datetime | None = None,
    now: float | None = None,
) -> CollectorRegistry:
    """A registry holding one run's figures (pure: no I/O)."""
    registry = CollectorRegistry()
    Gauge(
        "lakehouse_job_last_run_timestamp_seconds", "When the job last finished", ["job"], registry=registry
    ).labels(job).set(now if now is not None else time.time())
    Gauge(
        "lakehouse_job_last_success", "1 if the last run succeeded, else 0", ["job"], registry=registry
    ).labels(job).set(1 if success else 0)
    Gauge("lakehouse_job_duration_seconds", "Duration of the last run", ["job"], registry=registry).labels(
        job
    ).set(duration_s)
    if success:
        Gauge(
            "lakehouse_job_last_success_timestamp_seconds",
            "When the job last succeeded",
            ["job"],
            registry=registry,
        ).labels(job).set(now if now is not None else time.time())
    if counts:
        rows = Gauge(
            "lakehouse_job_rows", "Rows handled by the last run, by kind", ["job", "kind"], registry=registry
        )
        for kind, value in counts.items():
            rows.labels(job, kind).set(value)
    if window_end is not None:
        Gauge(
            "lakehouse_job_window_end_timestamp_seconds", "End of the window the last run processed", ["job"],
            registry=registry,
        ).labels(job).set(window_end.timestamp())  # fmt: skip
    return registry


def push_job_metrics(settings: Settings, job: str, registry: CollectorRegistry) -> bool:
    """Push to the configured gateway; False (and a warning) if it cannot be reached."""
    try:
        push_to_gateway(settings.metrics.pushgateway_url, job=job, registry=registry, timeout=5)
    except OSError as exc:
        log.warning(
            "metrics for %s not pushed: Pushgateway %s unreachable (%s)",
            job,
            settings.metrics.pushgateway_url,
            exc,
        )
        return False
    return True
