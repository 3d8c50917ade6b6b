"""The embedded silver engine: DuckDB runs :mod:`processing.silver.sql` over the Iceberg catalog,
pyiceberg commits the result.

Flow for one window: DuckDB reads the window's bronze rows through the attached catalog, computes
the candidates (one winner per key) and rejects, looks up the silver rows that may share a key
(bounded by trade-id ranges, not by day, so late trades meet their earlier copies), and keeps only
the rows that change silver. pyiceberg then commits, per table, ONE transaction: for silver a
delete of the keys being replaced plus the append of the changed rows; the REST catalog swaps the
table's metadata pointer once (guarded by the snapshot the transaction started from), so readers
see the whole run or none of it. Silver and its rejects are two tables and two commits; each is
idempotent on its own, so a run interrupted between them is completed by running the window again.
Nothing to change means no commit at all: re-running a window leaves the tables' snapshots as
they were.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from functools import reduce

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And, BooleanExpression, EqualTo, In, Or

from infrastructure.catalog import load_catalog
from infrastructure.settings import Settings
from infrastructure.tables import SILVER_TRADES, SILVER_TRADES_REJECTED
from processing import duckdb_engine
from processing.silver import sql
from processing.silver.run import CONTRACT_TABLES, SilverResult, SilverTables
from processing.silver.sql import KeyRange, Rules, Window

SILVER_ARROW = SILVER_TRADES.schema.as_arrow()
REJECTED_ARROW = SILVER_TRADES_REJECTED.schema.as_arrow()


@dataclass(frozen=True)
class Refined:
    """A window refined but not committed: the rows to write and the counts for the result."""

    changes: pa.Table  # silver columns + ``replaces``
    new_rejects: pa.Table  # silver.trades_rejected columns
    valid_rows: int
    keys: int
    rejected: int

    @property
    def replaced(self) -> int:
        return pc.sum(self.changes["replaces"]).as_py() or 0


def _duckdb(query: str) -> str:
    return sql.to_dialect(query, "duckdb")


def refine(
    con: duckdb.DuckDBPyConnection, bronze: str, silver: str, rejected: str, window: Window, rules: Rules
) -> Refined:
    """Run the silver SQL on ``con``; the three names are any relations DuckDB can read
    (attached Iceberg tables in production, parquet views in the engine-equivalence test)."""
    # materialized once: parsing decimals is the costly part, and candidates and rejects both need it
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE silver_checked AS {_duckdb(sql.checked_sql(bronze, window, rules))}"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE silver_candidates AS {_duckdb(sql.candidates_sql('silver_checked'))}"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE silver_rejects AS {_duckdb(sql.rejects_sql('silver_checked'))}"
    )
    ranges = [
        KeyRange(*row) for row in con.execute(_duckdb(sql.key_ranges_sql("silver_candidates"))).fetchall()
    ]
    changes = con.execute(
        _duckdb(sql.changes_sql("silver_candidates", sql.existing_silver_sql(silver, ranges)))
    ).to_arrow_table()
    new_rejects = con.execute(
        _duckdb(sql.new_rejects_sql("silver_rejects", sql.existing_rejects_sql(rejected, window)))
    ).to_arrow_table()
    keys, valid = con.execute("SELECT count(*), coalesce(sum(copies), 0) FROM silver_candidates").fetchone()
    (rejected_rows,) = con.execute("SELECT count(*) FROM silver_rejects").fetchone()
    for name in ("silver_checked", "silver_candidates", "silver_rejects"):
        con.execute(f"DROP TABLE {name}")
    return Refined(changes, new_rejects, int(valid), int(keys), int(rejected_rows))


def replaced_keys_filter(changes: pa.Table) -> BooleanExpression | None:
    """A pyiceberg filter matching the silver rows of the keys ``changes`` replaces."""
    replaced = changes.filter(pc.field("replaces"))
    ids: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in replaced.select(list(sql.KEY)).to_pylist():
        ids[(row["exchange"], row["product_id"])].append(row["trade_id"])
    terms = [
        And(EqualTo("exchange", exchange), EqualTo("product_id", product), In("trade_id", trade_ids))
        for (exchange, product), trade_ids in sorted(ids.items())
    ]
    return reduce(Or, terms) if terms else None


def commit(catalog: Catalog, tables: SilverTables, refined: Refined) -> None:
    """Write a refined window: one atomic transaction per table that changes."""
    if refined.changes.num_rows:
        rows = refined.changes.select(list(sql.SILVER_COLUMNS)).cast(SILVER_ARROW)
        replaced = replaced_keys_filter(refined.changes)
        with catalog.load_table(tables.silver).transaction() as tx:
            if replaced is not None:
                tx.delete(replaced)
            tx.append(rows)
    if refined.new_rejects.num_rows:
        catalog.load_table(tables.rejected).append(refined.new_rejects.cast(REJECTED_ARROW))


def run_duckdb(settings: Settings, window: Window, tables: SilverTables = CONTRACT_TABLES) -> SilverResult:
    """Refine ``window`` with DuckDB and commit with pyiceberg."""
    began = time.perf_counter()
    con = duckdb_engine.connect(settings)
    try:
        alias = duckdb_engine.CATALOG_ALIAS
        refined = refine(
            con,
            f"{alias}.{tables.bronze}",
            f"{alias}.{tables.silver}",
            f"{alias}.{tables.rejected}",
            window,
            Rules.from_settings(settings),
        )
    finally:
        con.close()
    committing = time.perf_counter()
    commit(load_catalog(settings), tables, refined)
    done = time.perf_counter()
    return SilverResult.from_counts(
        "duckdb",
        window,
        valid_rows=refined.valid_rows,
        keys=refined.keys,
        rejected=refined.rejected,
        rejected_new=refined.new_rejects.num_rows,
        changed=refined.changes.num_rows,
        replaced=refined.replaced,
        duration_s=done - began,
        commit_s=done - committing,
    )
