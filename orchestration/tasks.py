"""What the DAGs' tasks do: call the stage's job function (the same one the CLI calls, so a run
pushes the same metrics under the same job name wherever it started) and return a JSON-able
summary (it becomes the task's XCom).

Kept out of the DAG files so parsing them stays cheap; every heavy import happens inside a function.
A failure raises with a readable message; a failed quality check raises ``AirflowFailException``
so Airflow fails the run at once instead of retrying (a retry cannot fix bad data).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from infrastructure.settings import get_settings
from infrastructure.times import Window, parse_utc

log = logging.getLogger(__name__)


def summary(result: object) -> dict:
    """A dataclass result as plain JSON types (datetimes and paths as strings)."""
    data = asdict(result) if is_dataclass(result) else dict(result)  # type: ignore[call-overload]
    return {
        k: (v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, Path) else v)
        for k, v in data.items()
    }


def _staged(settings, staged: bool | None) -> bool:
    """Write-audit-publish for this task: as asked, else as settings say (the hourly DAG's way)."""
    return settings.orchestration.write_audit_publish if staged is None else staged


def silver(start: datetime | str, end: datetime | str, staged: bool | None = None) -> dict:
    from processing.silver.run import silver_job

    settings = get_settings()
    result = silver_job(settings, Window.parse(start, end), staged=_staged(settings, staged))
    log.info(result.summary())
    return summary(result)


def silver_reference(start: datetime | str, end: datetime | str) -> dict:
    from processing.silver.reference import reference_silver_job

    result = reference_silver_job(get_settings(), Window.parse(start, end))
    log.info(result.summary())
    return summary(result)


def completeness(start: datetime | str, end: datetime | str, recheck: bool = False) -> list[dict]:
    """Check silver's trade ids for the window (``recheck``: and the earlier hours settings name);
    returns the backfills to trigger, as ``TriggerDagRunOperator`` kwargs."""
    from processing.silver.completeness_run import completeness_job

    settings = get_settings()
    hours = settings.completeness.recheck_hours if recheck else 0
    result = completeness_job(settings, Window.parse(start, end), hours)
    log.info(result.summary())
    return result.backfills


def gold(start: datetime | str, end: datetime | str, staged: bool | None = None) -> dict:
    from processing.gold import gold_job

    settings = get_settings()
    hour = Window.parse(start, end).start if _staged(settings, staged) else None
    result = gold_job(settings, parse_utc(end, "window end"), staged_hour=hour)
    log.info(result.summary())
    if not result.success:
        raise RuntimeError(result.summary())
    return summary(result)


def quality(start: datetime | str, end: datetime | str, staged: bool | None = None) -> dict:
    from airflow.sdk.exceptions import AirflowFailException

    from quality.audit import audit_job
    from quality.checks import quality_job

    settings = get_settings()
    job = audit_job if _staged(settings, staged) else quality_job
    result = job(settings, Window.parse(start, end))
    log.info(result.summary())
    if not result.success:
        raise AirflowFailException(f"quality checks failed:\n{result.summary()}")
    return {"success": True, "results_file": str(result.results_file)}


def publish(start: datetime | str, end: datetime | str) -> dict:
    """Publish the audited hour (write-audit-publish); without it silver and gold wrote main already."""
    from quality.audit import publish_hour

    settings = get_settings()
    if not settings.orchestration.write_audit_publish:
        return {"published": "written directly"}
    result = publish_hour(settings, Window.parse(start, end))
    log.info(result.summary())
    return {"silver": result.silver, "gold": result.gold, "restaged": result.restaged}


def maintained_tables() -> list[str]:
    from infrastructure.catalog import load_catalog
    from processing.maintenance import maintained_tables as tables

    return tables(load_catalog(get_settings()))


def maintain(identifier: str, now: datetime | str) -> dict:
    from processing.maintenance import run_hourly

    result = run_hourly(get_settings(), identifier, parse_utc(now, "now"))
    log.info("%s hour %s: %s", identifier, result.hour, result)
    return summary(result)


def housekeeping(now: datetime | str) -> dict:
    from airflow.configuration import conf

    from processing.maintenance import run_housekeeping

    task_logs = Path(conf.get("logging", "base_log_folder"))  # this Airflow's own, in either stack
    return summary(run_housekeeping(get_settings(), parse_utc(now, "now"), task_logs))


def backfill(
    product: str,
    start: str,
    end: str,
    first_id: int | None = None,
    last_id: int | None = None,
    exchange: str = "coinbase",
) -> dict:
    """By time range (Coinbase), or by trade-id range when ``first_id``/``last_id`` are given (a gap,
    on ``exchange``: coinbase or binance)."""
    from ingestion.backfill import backfill_ids, backfill_range

    ingest_start = datetime.now(UTC)
    if first_id is not None and last_id is not None:
        result = backfill_ids(get_settings(), product.upper(), int(first_id), int(last_id), exchange=exchange)
    elif exchange != "coinbase":
        raise ValueError(
            f"a backfill by time range is for coinbase; for {exchange} give first_id and last_id"
        )
    else:
        result = backfill_range(
            get_settings(), product.upper(), parse_utc(start, "start"), parse_utc(end, "end")
        )
    if not result.complete:
        raise RuntimeError(
            f"backfill incomplete: published={result.published} acked={result.acked} unsent={result.unsent}"
        )
    return {**summary(result), "ingest_start": ingest_start.isoformat()}


def wait_for_bronze(backfill_result: dict) -> dict:
    """Block until bronze has written everything now in the topic, then hand on the ingest window."""
    from infrastructure.catalog import load_catalog
    from infrastructure.tables import BRONZE_TRADES
    from processing.bronze.progress import wait_until_written

    settings = get_settings()
    table = load_catalog(settings).load_table(BRONZE_TRADES.identifier)
    wait_until_written(table, settings.kafka, settings.orchestration.bronze_wait_timeout_s)
    # +1 s: silver's window is [start, end) over ingest time, and the last row may carry "now"
    ingest_end = datetime.now(UTC) + timedelta(seconds=1)
    return {"ingest_start": backfill_result["ingest_start"], "ingest_end": ingest_end.isoformat()}
