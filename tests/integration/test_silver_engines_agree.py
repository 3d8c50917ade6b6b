"""The two silver engines agree: local PySpark and DuckDB run the same SQL on a parquet copy of the
known-cases bronze and must produce identical rows (decimals compared exactly), window by window,
including duplicates, rejects, a replacement and a no-op re-run."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from infrastructure.settings import Settings
from infrastructure.times import Window
from processing.silver import duckdb_runner, sql
from processing.silver import spark_batch as silver_batch
from processing.silver.sql import KEY, LINEAGE, Rules
from tests.fixtures.lakehouse import W1, W2, known_cases

CHANGES_ARROW = pa.schema([*duckdb_runner.SILVER_ARROW, pa.field("replaces", pa.bool_())])


def normalized(table: pa.Table, schema: pa.Schema) -> list[dict]:
    """Same types, nullability relaxed (Spark and DuckDB disagree on it), stable order."""
    relaxed = pa.schema([f.with_nullable(True) for f in schema])
    cast = table.select(relaxed.names).cast(relaxed)
    return cast.sort_by([(c, "ascending") for c in (*KEY, *LINEAGE) if c in cast.column_names]).to_pylist()


def applied(silver: pa.Table, changes: pa.Table) -> pa.Table:
    """What MERGE leaves: silver without the changed keys, plus the changed rows."""
    changed = {tuple(r.values()) for r in changes.select(list(KEY)).to_pylist()}
    keep = [tuple(r.values()) not in changed for r in silver.select(list(KEY)).to_pylist()]
    rows = changes.select(duckdb_runner.SILVER_ARROW.names).cast(duckdb_runner.SILVER_ARROW)
    return pa.concat_tables([silver.filter(pa.array(keep, pa.bool_())), rows])


def run_both(
    spark, tmp: Path, bronze: Path, silver: pa.Table, rejected: pa.Table, window: Window, rules: Rules
):
    silver_path, rejected_path = (
        tmp / f"silver-{window.start:%H}.parquet",
        tmp / f"rejected-{window.start:%H}.parquet",
    )
    pq.write_table(silver, silver_path)
    pq.write_table(rejected, rejected_path)

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, path in (("bronze_src", bronze), ("silver_src", silver_path), ("rejected_src", rejected_path)):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
    in_duckdb = duckdb_runner.refine(con, "bronze_src", "silver_src", "rejected_src", window, rules)

    in_spark = silver_batch.refine(
        spark,
        spark.read.parquet(str(bronze)),
        spark.read.parquet(str(silver_path)),
        spark.read.parquet(str(rejected_path)),
        window,
        rules,
    )
    counts = (in_duckdb.valid_rows, in_duckdb.keys, in_duckdb.rejected, in_duckdb.replaced)
    assert counts == (in_spark.valid_rows, in_spark.keys, in_spark.rejected, in_spark.replaced)
    changes = normalized(in_duckdb.changes_table(), CHANGES_ARROW)
    assert changes == normalized(in_spark.changes.toArrow(), CHANGES_ARROW)
    new_rejects = normalized(in_duckdb.new_rejects, duckdb_runner.REJECTED_ARROW)
    assert new_rejects == normalized(in_spark.new_rejects.toArrow(), duckdb_runner.REJECTED_ARROW)
    return in_duckdb


def test_spark_and_duckdb_produce_identical_silver(spark, tmp_path: Path) -> None:
    scenario = known_cases()
    bronze = tmp_path / "bronze.parquet"
    pq.write_table(scenario.arrow(), bronze)
    rules = Rules.from_settings(Settings(_env_file=None))
    silver = duckdb_runner.SILVER_ARROW.empty_table()
    rejected = duckdb_runner.REJECTED_ARROW.empty_table()

    first = run_both(spark, tmp_path, bronze, silver, rejected, W1, rules)
    assert first.changed == len(scenario.winners_w1) and first.new_rejects.num_rows > 0
    silver = applied(silver, first.changes_table())
    rejected = pa.concat_tables([rejected, first.new_rejects.cast(duckdb_runner.REJECTED_ARROW)])

    second = run_both(spark, tmp_path, bronze, silver, rejected, W2, rules)
    assert second.replaced == 1  # the replacement case is exercised
    silver = applied(silver, second.changes_table())
    rejected = pa.concat_tables([rejected, second.new_rejects.cast(duckdb_runner.REJECTED_ARROW)])
    assert {tuple(r[c] for c in KEY): tuple(r[c] for c in LINEAGE) for r in silver.to_pylist()} == (
        scenario.winners
    )

    again = run_both(spark, tmp_path, bronze, silver, rejected, Window(W1.start, W2.end), rules)
    assert (again.changed, again.new_rejects.num_rows) == (0, 0)


def test_merge_statements_parse_with_sparks_own_parser(spark) -> None:
    """The MERGE statements cannot run without Iceberg's jars here, but Spark's parser must accept them."""
    parser = spark._jsparkSession.sessionState().sqlParser()
    for statement in (
        sql.merge_trades_sql("lakehouse.silver.trades", "silver_changes"),
        sql.merge_rejects_sql("lakehouse.silver.trades_rejected", "silver_new_rejects", W1),
    ):
        plan = parser.parsePlan(sql.to_dialect(statement, "spark"))
        assert "MergeIntoTable" in plan.getClass().getName()
