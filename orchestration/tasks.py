"""What the DAGs' tasks do: load settings, call the same library function as the CLI, push the run's
metrics, and return a JSON-able summary (it becomes the task's XCom).

Kept out of the DAG files so parsing them stays cheap; every heavy import happens inside a function.
A failure raises with a readable message; a failed quality check raises ``AirflowFailException``
so Airflow fails the run at once instead of retrying (a retry cannot fix bad data).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from infrastructure.job_metrics import run_and_push
from infrastructure.settings import get_settings

log = logging.getLogger(__name__)
BRONZE_POLL_S = 2.0


def as_utc(value: datetime | str) -> datetime:
    """Airflow hands datetimes (pendulum) to tasks and strings through params and XCom."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def summary(result: object) -> dict:
    """A dataclass result as plain JSON types (datetimes and paths as strings)."""
    data = asdict(result) if is_dataclass(result) else dict(result)  # type: ignore[call-overload]
    return {
        k: (v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, Path) else v)
        for k, v in data.items()
    }


def silver(start: datetime | str, end: datetime | str) -> dict:
    from processing.silver.run import SilverResult, run_silver

    settings = get_settings()
    window_start, window_end = as_utc(start), as_utc(end)
    result = run_and_push(
        settings, "silver", lambda: run_silver(settings, window_start, window_end), SilverResult.metric_counts, window_end
    )  # fmt: skip
    log.info("silver %s .. %s: %s", window_start, window_end, result)
    return summary(result)


def gold(start: datetime | str, end: datetime | str) -> dict:
    from processing.gold import GoldResult, run_gold

    settings = get_settings()
    result = run_and_push(settings, "gold", lambda: run_gold(settings), GoldResult.metric_counts, as_utc(end))
    log.info(result.summary())
    if not result.success:
        raise RuntimeError(result.summary())
    return summary(result)


def quality(pipeline: str, start: datetime | str, end: datetime | str) -> dict:
    from airflow.sdk.exceptions import AirflowFailException

    from quality.checks import QualityResult, run_quality

    settings = get_settings()
    window_start, window_end = as_utc(start), as_utc(end)
    result = run_and_push(
        settings, pipeline, lambda: run_quality(settings, window_start, window_end),
        QualityResult.metric_counts, window_end,
    )  # fmt: skip
    log.info(result.summary())
    if not result.success:
        raise AirflowFailException(
            f"quality checks failed for {window_start} .. {window_end}:\n{result.summary()}"
        )
    return {"success": True, "results_file": str(result.results_file)}


def maintained_tables() -> list[str]:
    from infrastructure.catalog import load_catalog
    from processing.maintenance import maintained_tables as tables

    return tables(load_catalog(get_settings()))


def maintain(identifier: str, now: datetime | str) -> dict:
    from processing.maintenance import run_hourly

    result = run_hourly(get_settings(), identifier, as_utc(now))
    log.info("%s hour %s: %s", identifier, result.hour, result)
    return summary(result)


def backfill(product: str, start: str, end: str) -> dict:
    from ingestion.backfill import backfill_range

    settings = get_settings()
    ingest_start = datetime.now(UTC)
    result = backfill_range(settings, product.upper(), as_utc(start), as_utc(end))
    if not result.complete:
        raise RuntimeError(
            f"backfill incomplete: published={result.published} acked={result.acked} unsent={result.unsent}"
        )
    return {**summary(result), "ingest_start": ingest_start.isoformat()}


def wait_for_bronze(backfill_result: dict) -> dict:
    """Block until bronze's recorded offsets reach the topic's end, then hand on the ingest window."""
    from confluent_kafka import Consumer, TopicPartition

    from infrastructure.catalog import load_catalog
    from processing.bronze.writer import table_offsets

    settings = get_settings()
    topic = settings.kafka.trades_topic
    table = load_catalog(settings).load_table("bronze.trades")
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "lakehouse-bronze-wait"}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        }
        deadline = time.monotonic() + settings.orchestration.bronze_wait_timeout_s
        while True:
            table.refresh()
            recorded = table_offsets(table)
            behind = {
                p: end - recorded.get((topic, p), 0)
                for p, end in ends.items()
                if recorded.get((topic, p), 0) < end
            }
            if not behind:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"bronze is still behind the topic after the backfill (messages per partition): {behind}"
                )
            time.sleep(BRONZE_POLL_S)
    finally:
        consumer.close()
    # +1 s: silver's window is [start, end) over ingest time, and the last row may carry "now"
    ingest_end = datetime.now(UTC) + timedelta(seconds=1)
    return {"ingest_start": backfill_result["ingest_start"], "ingest_end": ingest_end.isoformat()}
