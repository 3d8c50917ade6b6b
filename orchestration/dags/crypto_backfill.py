"""
### crypto_backfill — re-fetch a product's trades for a time range, then refine them

Triggered by hand with params `product`, `start`, `end` (ISO 8601, UTC), or by `crypto_hourly`
for a hole in the trade ids, with `first_id` and `last_id` too (and `start`/`end` its hour):

1. **backfill**: page through Coinbase's REST trades for the range, or back from `last_id` to
   `first_id` by the trade-id cursor (rate-limited); on Binance (`exchange=binance`, a hole by trade
   id) through its trade history from `first_id`, and publish them to Kafka with `source=backfill`. Trades already present are published again on purpose:
   silver's deduplication keeps exactly one row per trade id.
2. **wait_for_bronze**: wait until the bronze writer has consumed everything published (consumer
   lag zero for the trades topic), bounded by a timeout.
3. **silver / gold / quality**: silver for the bronze ingest window the backfill produced
   (backfilled rows are ingested *now*, whatever their event time), then gold, whose late-data
   handling re-aggregates the affected candles, then the quality suites for the range. Written to
   `main` directly, not staged: a backfill window is not an hour of its own (docs/write-audit-publish.md).
4. **recheck** (after silver): the completeness check for the range, which closes (`filled`) the
   holes of `silver.trade_gaps` now present.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from orchestration.schedule import DEFAULT_ARGS, START_DATE


@dag(
    dag_id="crypto_backfill",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=6),
    params={
        "exchange": Param(
            "coinbase", enum=["coinbase", "binance"], description="venue (binance: by trade id)"
        ),
        "product": Param("BTC-USD", type="string", description="product id, e.g. BTC-USD, BTC-USDT"),
        "start": Param(type="string", format="date-time", description="range start, UTC"),
        "end": Param(type="string", format="date-time", description="range end, UTC (exclusive)"),
        "first_id": Param(None, type=["null", "integer"], description="fill trade ids from (a gap)"),
        "last_id": Param(None, type=["null", "integer"], description="fill trade ids to, inclusive"),
    },
    tags=["lakehouse", "backfill", "manual"],
    doc_md=__doc__,
)
def crypto_backfill():
    @task
    def backfill(params=None) -> dict:
        from orchestration import tasks

        return tasks.backfill(
            params["product"], params["start"], params["end"], params.get("first_id"), params.get("last_id"),
            params.get("exchange") or "coinbase",
        )  # fmt: skip

    @task
    def wait_for_bronze(backfill_result: dict) -> dict:
        from orchestration import tasks

        return tasks.wait_for_bronze(backfill_result)

    @task
    def silver(bronze_result: dict) -> dict:
        from orchestration import tasks

        return tasks.silver(bronze_result["ingest_start"], bronze_result["ingest_end"], staged=False)

    @task
    def gold(silver_result: dict, params=None) -> dict:
        from orchestration import tasks

        return tasks.gold(params["start"], params["end"], staged=False)

    @task(retries=0)
    def quality(gold_result: dict, params=None) -> dict:
        from orchestration import tasks

        return tasks.quality(params["start"], params["end"], staged=False)

    @task
    def recheck(silver_result: dict, params=None) -> list[dict]:
        from orchestration import tasks

        return tasks.completeness(params["start"], params["end"])

    refined = silver(wait_for_bronze(backfill()))
    quality(gold(refined))
    recheck(refined)


crypto_backfill()
