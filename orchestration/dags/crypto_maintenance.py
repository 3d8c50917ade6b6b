"""
### crypto_maintenance — hourly Iceberg retention and maintenance

Every hour, five minutes past (the bronze writer has tagged the hour by then), for
`bronze.trades`, `silver.trades`, `silver.trades_rejected` and every gold table, the hour that
just closed (`processing.maintenance.maintain_hour`, detail in docs/maintenance.md):

1. **properties**: manifest merging on, so appends keep a bounded number of manifests.
2. **tag** the closed hour (`hour-YYYY-MM-DDTHH`, unless the bronze writer did at the boundary) and
   drop tags older than `snapshot_retention_hours`: time travel reaches every hour of the window.
3. **compact** the files of rows ingested in that hour (atomic, retried from a fresh read if a
   writer commits meanwhile; the bronze writer's Kafka offsets are carried into the new snapshot).
4. **expire** every untagged snapshot but the newest `retain_last_snapshots`, in one commit.
5. **remove orphan files** older than `orphan_min_age_hours` that nothing retained references.

Then **storage_log** (embedded stack): SeaweedFS's filer metadata log, a journal of every storage
change that nothing here reads back, is cut to the last `storage_log_retention_hours` and its
space vacuumed (`infrastructure.seaweed_log`); the compose stack's SeaweedFS master does that itself.

Each step is timed; the run and the table's gauges (snapshots, manifests, data files, metadata
size) are pushed as metrics. On a catalog that disables Iceberg GC (Nessie in the compose stack
sets `gc.enabled=false`), steps 4 and 5 are skipped with that reason: Nessie's own GC owns file
deletion there. No catch-up: each run maintains the hour before it, and a missed hour is compacted
by no later run (its files stay, correct and readable).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from orchestration.schedule import DEFAULT_ARGS, START_DATE


@dag(
    dag_id="crypto_maintenance",
    schedule=CronDataIntervalTimetable("5 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(minutes=50),
    tags=["lakehouse", "maintenance", "iceberg"],
    doc_md=__doc__,
)
def crypto_maintenance():
    @task
    def tables() -> list[str]:
        from orchestration import tasks

        return tasks.maintained_tables()

    @task
    def maintain(table: str, data_interval_end=None) -> dict:
        from orchestration import tasks

        return tasks.maintain(table, data_interval_end)

    @task(trigger_rule="all_done")  # independent of the tables: runs even if one table's run failed
    def storage_log(data_interval_end=None) -> dict:
        from orchestration import tasks

        return tasks.storage_log(data_interval_end)

    maintain.expand(table=tables()) >> storage_log()


crypto_maintenance()
