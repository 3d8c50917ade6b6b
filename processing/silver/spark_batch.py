"""Silver for the compose stack: a Spark batch job that refines one bronze window with ``MERGE INTO``.

    spark-submit processing/silver/spark_batch.py --start 2026-01-01T10:00Z --end 2026-01-01T11:00Z

Settings come from ``infrastructure.settings.load_settings`` (the same ``LAKEHOUSE_*`` variables
as everywhere). The selection, typing, validation and dedup are the SQL of
:mod:`processing.silver.sql`, the same statements DuckDB runs in the embedded stack; :func:`refine`
runs them on plain DataFrames (testable with local PySpark and parquet), :func:`run` wires them
to the Iceberg tables and applies the changes with one ``MERGE INTO`` per table (each an atomic
Iceberg commit). The last line on stdout is ``SILVER_RESULT {json}`` for the caller (or ``SILVER_UNAVAILABLE <why>``
with exit status 2 when this Spark has no Iceberg runtime). The Spark UI is off: a batch job of
minutes does not need it, and it would listen on every interface.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from infrastructure.settings import Settings, load_settings
from infrastructure.times import Window
from processing.silver import sql
from processing.silver.result import (
    CONTRACT_TABLES,
    RESULT_PREFIX,
    UNAVAILABLE_PREFIX,
    SilverResult,
    SilverTables,
)
from processing.silver.sql import KeyRange, Rules
from processing.spark_session import IcebergUnavailable, build_session, require_iceberg

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class SparkRefined:
    """A window refined but not merged; both frames are checkpointed, so they no longer depend on
    the tables the merge is about to change."""

    changes: DataFrame  # silver columns + ``replaces``
    new_rejects: DataFrame
    valid_rows: int
    keys: int
    rejected: int
    replaced: int


def refine(
    spark: SparkSession,
    bronze: DataFrame,
    silver: DataFrame,
    rejected: DataFrame,
    window: Window,
    rules: Rules,
) -> SparkRefined:
    """The silver SQL over three DataFrames (bronze, current silver, current rejects)."""
    bronze.createOrReplaceTempView("silver_bronze_source")
    silver.createOrReplaceTempView("silver_existing_source")
    rejected.createOrReplaceTempView("silver_rejected_source")

    def query(text: str) -> DataFrame:
        return spark.sql(sql.to_dialect(text, "spark"))

    query(sql.checked_sql("silver_bronze_source", window, rules)).createOrReplaceTempView("silver_checked")
    candidates = query(sql.candidates_sql("silver_checked")).localCheckpoint()
    candidates.createOrReplaceTempView("silver_candidates")
    rejects = query(sql.rejects_sql("silver_checked")).localCheckpoint()
    rejects.createOrReplaceTempView("silver_rejects")
    ranges = [KeyRange(*row) for row in query(sql.key_ranges_sql("silver_candidates")).collect()]
    changes = query(
        sql.changes_sql("silver_candidates", sql.existing_silver_sql("silver_existing_source", ranges))
    ).localCheckpoint()
    new_rejects = query(
        sql.new_rejects_sql("silver_rejects", sql.existing_rejects_sql("silver_rejected_source", window))
    ).localCheckpoint()
    keys, valid = spark.sql("SELECT count(*), coalesce(sum(copies), 0) FROM silver_candidates").first()
    replaced = changes.where("replaces").count()
    return SparkRefined(changes, new_rejects, int(valid), int(keys), rejects.count(), replaced)


def run(
    spark: SparkSession, settings: Settings, window: Window, tables: SilverTables = CONTRACT_TABLES
) -> SilverResult:
    """Refine ``window`` from the catalog's bronze and MERGE the changes into silver and its rejects."""
    began = time.perf_counter()
    name = settings.catalog.name
    bronze, silver, rejected = (f"{name}.{t}" for t in (tables.bronze, tables.silver, tables.rejected))
    refined = refine(
        spark,
        spark.table(bronze),
        spark.table(silver),
        spark.table(rejected),
        window,
        Rules.from_settings(settings),
    )
    changed = refined.changes.count()
    new_rejects = refined.new_rejects.count()
    committing = time.perf_counter()
    # nothing to change, nothing committed: a re-run leaves the snapshots as they were
    if changed:
        refined.changes.createOrReplaceTempView("silver_changes")
        spark.sql(sql.to_dialect(sql.merge_trades_sql(silver, "silver_changes"), "spark"))
    if new_rejects:
        refined.new_rejects.createOrReplaceTempView("silver_new_rejects")
        spark.sql(sql.to_dialect(sql.merge_rejects_sql(rejected, "silver_new_rejects", window), "spark"))
    return SilverResult.from_counts(
        "spark",
        window,
        valid_rows=refined.valid_rows,
        keys=refined.keys,
        rejected=refined.rejected,
        rejected_new=new_rejects,
        changed=changed,
        replaced=refined.replaced,
        duration_s=time.perf_counter() - began,
        commit_s=time.perf_counter() - committing,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Refine bronze rows ingested in [start, end) into silver.")
    parser.add_argument("--start", required=True, help="ISO 8601, UTC if no offset")
    parser.add_argument("--end", required=True, help="ISO 8601, UTC if no offset (exclusive)")
    parser.add_argument("--bronze", default=CONTRACT_TABLES.bronze)
    parser.add_argument("--silver", default=CONTRACT_TABLES.silver)
    parser.add_argument("--rejected", default=CONTRACT_TABLES.rejected)
    args = parser.parse_args(argv)
    window = Window.parse(args.start, args.end)
    settings = load_settings()
    spark = build_session(settings, "lakehouse-silver", {"spark.ui.enabled": "false"})
    try:
        require_iceberg(spark)
        result = run(spark, settings, window, SilverTables(args.bronze, args.silver, args.rejected))
    except IcebergUnavailable as exc:
        # on stdout, where Spark's own logging (stderr) cannot interleave with it
        print(UNAVAILABLE_PREFIX + str(exc), flush=True)
        return 2
    finally:
        spark.stop()
    print(RESULT_PREFIX + result.to_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
