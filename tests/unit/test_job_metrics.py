"""Batch-job metrics: conventional names, low-cardinality labels, and a soft failure without a gateway."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.exposition import generate_latest

from infrastructure.job_metrics import build_registry, push_job_metrics
from infrastructure.services import free_port
from infrastructure.settings import Settings


def test_registry_exposes_one_run() -> None:
    registry = build_registry(
        "silver", True, 12.5, {"in": 100, "out": 97, "rejected": 1, "duplicates": 2},
        window_end=datetime(2026, 11, 22, 3, tzinfo=UTC), now=1000.0,
    )  # fmt: skip
    text = generate_latest(registry).decode()
    assert 'lakehouse_job_last_success{job="silver"} 1.0' in text
    assert 'lakehouse_job_rows{job="silver",kind="duplicates"} 2.0' in text
    assert 'lakehouse_job_duration_seconds{job="silver"} 12.5' in text
    assert "lakehouse_job_window_end_timestamp_seconds" in text


def test_failed_run_has_no_success_timestamp() -> None:
    text = generate_latest(build_registry("quality", False, 1.0)).decode()
    assert 'lakehouse_job_last_success{job="quality"} 0.0' in text
    assert "lakehouse_job_last_success_timestamp_seconds" not in text


def test_unreachable_gateway_is_not_an_error() -> None:
    settings = Settings(_env_file=None, metrics={"pushgateway_url": f"http://127.0.0.1:{free_port()}"})
    assert push_job_metrics(settings, "silver", build_registry("silver", True, 1.0)) is False
