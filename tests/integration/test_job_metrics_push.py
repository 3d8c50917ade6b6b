"""Batch jobs' per-run metrics through a real Pushgateway: a failed run after a good one keeps the
last success time and the last window processed (so staleness alerts keep counting), and Prometheus
scrapes what was pushed."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from infrastructure import services, supervisor
from infrastructure.job_metrics import build_registry, push_job_metrics, run_and_push
from tests.fixtures.monitoring import gateway_samples, monitoring_settings

JOB = "obs_test_job"  # a job of its own: the session's Prometheus also serves the dashboard tests
WINDOW_END = datetime(2026, 11, 22, 5, tzinfo=UTC)


def test_a_failed_run_keeps_the_last_good_runs_success_time_and_window(observed_prometheus) -> None:
    settings = observed_prometheus.settings
    good = SimpleNamespace(success=True, rows=7)
    assert run_and_push(settings, JOB, lambda: good, lambda r: {"out": r.rows}, WINDOW_END) is good
    after_good = gateway_samples(settings, JOB)
    assert after_good[("lakehouse_job_last_success", "")] == 1
    assert after_good[("lakehouse_job_rows", "out")] == 7
    assert after_good[("lakehouse_job_window_end_timestamp_seconds", "")] == WINDOW_END.timestamp()

    def broken() -> None:
        raise RuntimeError("catalog unreachable")

    later = datetime(2026, 11, 22, 6, tzinfo=UTC)
    with pytest.raises(RuntimeError, match="catalog unreachable"):
        run_and_push(settings, JOB, broken, window_end=later)
    after_failure = gateway_samples(settings, JOB)
    assert after_failure[("lakehouse_job_last_success", "")] == 0
    assert (
        after_failure[("lakehouse_job_last_run_timestamp_seconds", "")]
        >= (after_good[("lakehouse_job_last_run_timestamp_seconds", "")])
    )
    kept = ("lakehouse_job_last_success_timestamp_seconds", "lakehouse_job_window_end_timestamp_seconds")
    assert {name: after_failure[(name, "")] for name in kept} == {
        name: after_good[(name, "")] for name in kept
    }

    # a result that reports failure (gold's dbt build) is a failed run too, without raising
    run_and_push(settings, JOB, lambda: SimpleNamespace(success=False), window_end=later)
    assert (
        gateway_samples(settings, JOB)[("lakehouse_job_window_end_timestamp_seconds", "")]
        == WINDOW_END.timestamp()
    )

    found = observed_prometheus.wait_for(f'lakehouse_job_last_success{{job="{JOB}"}} == 0')
    assert found[0]["metric"]["job"] == JOB  # honor_labels: the pushed job label, not "pushgateway"


def test_the_embedded_pushgateway_keeps_pushed_runs_across_a_restart(tmp_path) -> None:
    settings, paths = monitoring_settings(tmp_path)
    gateway = supervisor.pushgateway_service(settings, paths)
    assert gateway, "prometheus-pushgateway missing: run make setup"
    proc = services.start(gateway.spec)
    try:
        services.wait_ready(gateway.spec, proc, 30)
        assert push_job_metrics(settings, "gold", build_registry("gold", True, 3.0, window_end=WINDOW_END))
    finally:
        services.stop(proc.pid)  # SIGTERM: the gateway writes its persistence file on the way out
    assert (tmp_path / "pushgateway" / "metrics.data").is_file()
    proc = services.start(gateway.spec)
    try:
        services.wait_ready(gateway.spec, proc, 30)
        samples = gateway_samples(settings, "gold")
    finally:
        services.stop(proc.pid)
    assert samples[("lakehouse_job_last_success", "")] == 1
    assert samples[("lakehouse_job_window_end_timestamp_seconds", "")] == WINDOW_END.timestamp()
