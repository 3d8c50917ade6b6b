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
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And, BooleanExpression, EqualTo, In, Or
from pyiceberg.table.refs import MAIN_BRANCH

from infrastructure.catalog import load_catalog
from infrastructure.settings import Settings
from infrastructure.tables import SILVER_TRADES, SILVER_TRADES_REJECTED
from infrastructure.times import Window
from processing import duckdb_engine
from processing.silver import sql
from processing.silver.result import CONTRACT_TABLES, SilverResult, SilverTables
from processing.silver.sql import KeyRange, Rules

SILVER_ARROW = SILVER_TRADES.schema.as_arrow()
REJECTED_ARROW = SILVER_TRADES_REJECTED.schema.as_arrow()


# the contract's sort order (product, then time): pyiceberg writes rows as given, so DuckDB sorts
SORT_COLUMNS = ", ".join(
    SILVER_TRADES.schema.find_column_name(f.source_id) for f in SILVER_TRADES.sort_order.fields
)
# rows per Arrow batch handed to pyiceberg: bounds memory whatever the window's size
COMMIT_BATCH_ROWS = 1_000_000


@dataclass(frozen=True)
class Refined:
    """A window refined but not committed: counts, and the changed rows still inside DuckDB
    (temp table ``silver_changes`` on ``con``) so they can be streamed to the writer."""

    con: duckdb.DuckDBPyConnection
    changed: int
    replaced_keys: pa.Table  # KEY columns of the changes that replace a silver row
    new_rejects: pa.Table  # silver.trades_rejected columns
    valid_rows: int
    keys: int
    rejected: int

    @property
    def replaced(self) -> int:
        return self.replaced_keys.num_rows

    def changes(self, batch_rows: int = COMMIT_BATCH_ROWS) -> pa.RecordBatchReader:
        """The changed rows (silver columns + ``replaces``) in the table's sort order."""
        query = f"SELECT * FROM silver_changes ORDER BY {SORT_COLUMNS}"
        return self.con.execute(query).fetch_record_batch(batch_rows)

    def changes_table(self) -> pa.Table:
        return self.changes().read_all()


def _duckdb(query: str) -> str:
    return sql.to_dialect(query, "duckdb")


def refine(
    con: duckdb.DuckDBPyConnection, bronze: str, silver: str, rejected: str, window: Window, rules: Rules
) -> Refined:
    """Run the silver SQL on ``con``; the three names are any relations DuckDB can read
    (attached Iceberg tables in production, parquet views in the engine-equivalence test)."""

    def create(name: str, query: str) -> None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {_duckdb(query)}")

    # materialized once: parsing decimals is the costly part, and candidates and rejects both need it
    create("silver_checked", sql.checked_sql(bronze, window, rules))
    create("silver_candidates", sql.candidates_sql("silver_checked"))
    create("silver_rejects", sql.rejects_sql("silver_checked"))
    con.execute("DROP TABLE silver_checked")  # free it before the next big relation
    ranges = [
        KeyRange(*row) for row in con.execute(_duckdb(sql.key_ranges_sql("silver_candidates"))).fetchall()
    ]
    create("silver_changes", sql.changes_sql("silver_candidates", sql.existing_silver_sql(silver, ranges)))
    keys, valid = con.execute("SELECT count(*), coalesce(sum(copies), 0) FROM silver_candidates").fetchone()
    con.execute("DROP TABLE silver_candidates")
    new_rejects = con.execute(
        _duckdb(sql.new_rejects_sql("silver_rejects", sql.existing_rejects_sql(rejected, window)))
    ).to_arrow_table()
    (rejected_rows,) = con.execute("SELECT count(*) FROM silver_rejects").fetchone()
    con.execute("DROP TABLE silver_rejects")
    (changed,) = con.execute("SELECT count(*) FROM silver_changes").fetchone()
    replaced_keys = con.execute(
        f"SELECT {', '.join(sql.KEY)} FROM silver_changes WHERE replaces"
    ).to_arrow_table()
    return Refined(con, int(changed), replaced_keys, new_rejects, int(valid), int(keys), int(rejected_rows))


def replaced_keys_filter(keys: pa.Table) -> BooleanExpression | None:
    """A pyiceberg filter matching the silver rows of ``keys`` (exchange, product_id, trade_id)."""
    ids: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in keys.to_pylist():
        ids[(row["exchange"], row["product_id"])].append(row["trade_id"])
    terms = [
        And(EqualTo("exchange", exchange), EqualTo("product_id", product), In("trade_id", trade_ids))
        for (exchange, product), trade_ids in sorted(ids.items())
    ]
    return reduce(Or, terms) if terms else None


def commit(catalog: Catalog, tables: SilverTables, refined: Refined) -> None:
    """Write a refined window: one atomic transaction per table that changes. The changed rows are
    streamed in batches (several appends, still one commit), so memory does not grow with the window.
    Commits go to ``tables.branch`` (``main`` when None)."""
    branch = tables.branch or MAIN_BRANCH
    if refined.changed:
        replaced = replaced_keys_filter(refined.replaced_keys)
        with catalog.load_table(tables.silver).transaction() as tx:
            if replaced is not None:
                tx.delete(replaced, branch=branch)
            for batch in refined.changes():
                rows = pa.Table.from_batches([batch]).select(list(sql.SILVER_COLUMNS)).cast(SILVER_ARROW)
                tx.append(rows, branch=branch)
    if refined.new_rejects.num_rows:
        catalog.load_table(tables.rejected).append(refined.new_rejects.cast(REJECTED_ARROW), branch=branch)


def run_duckdb(settings: Settings, window: Window, tables: SilverTables = CONTRACT_TABLES) -> SilverResult:
    """Refine ``window`` with DuckDB and commit with pyiceberg."""
    began = time.perf_counter()
    con = duckdb_engine.connect(settings)
    con.execute("SET enable_progress_bar = false")  # a batch job's output is its result, not a bar
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
        committing = time.perf_counter()
        commit(load_catalog(settings), tables, refined)
        done = time.perf_counter()
    finally:
        con.close()
    return SilverResult.from_counts(
        "duckdb",
        window,
        valid_rows=refined.valid_rows,
        keys=refined.keys,
        rejected=refined.rejected,
        rejected_new=refined.new_rejects.num_rows,
        changed=refined.changed,
        replaced=refined.replaced,
        duration_s=done - began,
        commit_s=done - committing,
    )
