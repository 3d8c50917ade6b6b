"""Per-run metrics of batch jobs (silver, gold, quality, maintenance), pushed to a Pushgateway.

Batch jobs end before Prometheus could scrape them, so each run pushes its figures under the
grouping key ``job=<name>`` and Prometheus scrapes the gateway. Names follow Prometheus
conventions: ``lakehouse_job_*``, base units, only low-cardinality labels (job, kind, table).
An unreachable gateway is logged and ignored: metrics must never fail the pipeline.

Pushes add to the job's group (POST): a failed run replaces its run, success and duration series
but keeps the last success time and the end of the last window processed from the last good run,
so "gold is 2 hours old" keeps counting while runs fail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway
from prometheus_client.exposition import basic_auth_handler, default_handler

from infrastructure.settings import Settings

log = logging.getLogger(__name__)
R = TypeVar("R")


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
    """Push to the configured gateway (with its basic-auth credentials when set); False (and a
    warning) if it cannot be reached or refuses them."""
    m = settings.metrics
    handler = default_handler
    if m.pushgateway_password is not None:
        username, password = m.pushgateway_auth()

        def handler(url, method, timeout, headers, data):
            return basic_auth_handler(url, method, timeout, headers, data, username, password)

    try:
        pushadd_to_gateway(m.pushgateway_url, job=job, registry=registry, timeout=5, handler=handler)
    except OSError as exc:
        log.warning(
            "metrics for %s not pushed: Pushgateway %s unreachable or refused them (%s)",
            job,
            settings.metrics.pushgateway_url,
            exc,
        )
        return False
    return True


def run_and_push(
    settings: Settings,
    job: str,
    run: Callable[[], R],
    counts: Callable[[R], Mapping[str, float]] | None = None,
    window_end: datetime | None = None,
    gauges: Callable[[R, CollectorRegistry], None] | None = None,
) -> R:
    """Run one batch job and push its figures whether it succeeds, reports a failure or raises.

    A result with ``success`` False counts as a failed run; ``counts`` turns the result into rows
    by kind; ``window_end`` is pushed only for a successful run (the window is then processed);
    ``gauges`` adds the job's own series (e.g. per quality suite) to the same push.
    """
    started = time.monotonic()
    try:
        result = run()
    except Exception:
        push_job_metrics(settings, job, build_registry(job, False, time.monotonic() - started))
        raise
    ok = bool(getattr(result, "success", True))
    figures = counts(result) if counts is not None else None
    registry = build_registry(job, ok, time.monotonic() - started, figures, window_end if ok else None)
    if gauges is not None:
        gauges(result, registry)
    push_job_metrics(settings, job, registry)
    return result
