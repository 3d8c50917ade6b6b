"""
### crypto_hourly — bronze → silver → gold → quality, one hour per run

Each run owns exactly one hour, `[data_interval_start, data_interval_end)` of bronze **ingest
time** (a cron data-interval timetable gives every run a real interval). Steps:

Write-audit-publish (docs/write-audit-publish.md): silver and gold are written where readers do not
look, audited there, and published only if the audit passes.

1. **silver**: type, validate and deduplicate the hour's bronze rows into the Iceberg branch
   `audit-<hour>` of `silver.trades` (rejects: of `silver.trades_rejected`), reset from `main`;
   idempotent, so a retry or a re-run is safe. **silver_reference** refines the hour's reference
   prices into `silver.reference_prices` (one row per source, coin, currency and
   `last_updated_at`), on `main`: gold reads them, they are not staged.
2. **gold**: `dbt build` of the gold models into the shadow namespace `gold_audit`, from silver at
   the audit branches (late trades re-aggregate the candles they touch).
3. **quality** (the audit): Great Expectations suites on the staged silver and gold for the hour. A
   failed suite fails the run visibly, without retries (a retry cannot fix bad data), pushes a
   metric saying so, and publishes nothing: `main` and `gold.*` stay as they were.
4. **publish**: fast-forward silver's `main` to the branches, copy gold's changes into `gold.*`
   (one commit per table); idempotent, so a re-run after a crash publishes once.
5. **completeness** (after publish): look for holes in each product's consecutive trade ids over
   the hour (and the one before, for late trades), record them in `silver.trade_gaps`, close the
   ones now filled; **backfill_gaps** triggers one `crypto_backfill` run per open hole (by trade
   id, from the exchange's REST API; that run re-checks and closes it). Triggered, not awaited:
   the hour does not wait on REST, and `crypto_backfill` runs one at a time.

Catch-up is on, so hours missed while the stack was down, or a backfilled range, are processed
hour by hour; `max_active_runs=1` keeps them in order. The engine (spark in the compose stack,
duckdb embedded) comes from settings.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from orchestration.schedule import DEFAULT_ARGS, START_DATE

TAGS = ["lakehouse", "hourly", "silver", "gold", "quality", "publish"]


@dag(
    dag_id="crypto_hourly",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=True,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(minutes=55),
    tags=TAGS,
    doc_md=__doc__,
)
def crypto_hourly():
    @task
    def silver(data_interval_start=None, data_interval_end=None) -> dict:
        from orchestration import tasks

        return tasks.silver(data_interval_start, data_interval_end)

    @task
    def silver_reference(data_interval_start=None, data_interval_end=None) -> dict:
        from orchestration import tasks

        return tasks.silver_reference(data_interval_start, data_interval_end)

    @task
    def gold(silver_result: dict, data_interval_start=None, data_interval_end=None) -> dict:
        from orchestration import tasks

        return tasks.gold(data_interval_start, data_interval_end)

    @task(retries=0)
    def quality(gold_result: dict, data_interval_start=None, data_interval_end=None) -> dict:
        from orchestration import tasks

        return tasks.quality(data_interval_start, data_interval_end)

    @task
    def publish(quality_result: dict, data_interval_start=None, data_interval_end=None) -> dict:
        from orchestration import tasks

        return tasks.publish(data_interval_start, data_interval_end)

    @task
    def completeness(published: dict, data_interval_start=None, data_interval_end=None) -> list[dict]:
        from orchestration import tasks

        return tasks.completeness(data_interval_start, data_interval_end, recheck=True)

    built = gold(silver())
    silver_reference() >> built  # gold's price_deviation_1m reads the hour's reference prices
    published = publish(quality(built))
    # one mapped trigger per hole (none: skipped); run ids name the hole, so a retry never doubles it
    TriggerDagRunOperator.partial(
        task_id="backfill_gaps", trigger_dag_id="crypto_backfill", skip_when_already_exists=True
    ).expand_kwargs(completeness(published))


crypto_hourly()
