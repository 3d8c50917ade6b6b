"""
### crypto_maintenance — daily Iceberg table maintenance

For each of `bronze.trades`, `silver.trades` and `silver.trades_rejected`, in order:

1. **compact**: rewrite every partition with at least `compact_min_files` data files into one
   sorted file per partition (atomic per partition; the bronze writer's Kafka offsets are carried
   into the compaction snapshot so exactly-once survives snapshot expiry).
2. **expire snapshots** older than `snapshot_retention_hours`, always keeping the newest
   `retain_last_snapshots` (time travel reaches back that far).
3. **remove orphan files**: objects no retained snapshot references, older than
   `orphan_min_age_hours`.

File counts before and after are logged and pushed as metrics. On a catalog that disables Iceberg
GC (Nessie in the compose stack sets `gc.enabled=false`), steps 2 and 3 are skipped with that
reason: Nessie's own GC tool owns file deletion there (see README, "Table maintenance").
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from orchestration.schedule import DEFAULT_ARGS, START_DATE

MAINTAINED_TABLES = ["bronze.trades", "silver.trades", "silver.trades_rejected", "silver.trade_gaps"]


@dag(
    dag_id="crypto_maintenance",
    schedule="30 2 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=3),
    tags=["lakehouse", "maintenance", "iceberg"],
    doc_md=__doc__,
)
def crypto_maintenance():
    @task
    def maintain(table: str) -> dict:
        from orchestration import tasks

        return tasks.maintain(table)

    maintain.expand(table=MAINTAINED_TABLES)


crypto_maintenance()
