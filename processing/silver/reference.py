"""``silver.reference_prices``: one bronze window of reference prices typed, validated and
deduplicated, in the hourly silver step beside trades (``reference_silver_job``).

One row per (source, coin_id, vs_currency, event_time): the API's answer for a pair at its
``last_updated_at`` is one fact, however many polls or re-deliveries brought it. The first copy
in Kafka order (topic, partition, offset) wins, and a key silver already holds is left as it is,
so re-running a window changes nothing (no commit at all). Valid means every field present and a
price that parses as decimal(38,18) and is positive; other rows stay in bronze and are counted
(``rejected``), never written. The SQL is canonical Spark SQL built from silver's own pieces
(:mod:`processing.silver.sql`: the window bounds, the exact decimal parse) and run by DuckDB, with
one pyiceberg append per window: a few thousand rows a day need no Spark job, so both stacks run
this same path (the compose stack's DuckDB attaches its Nessie catalog as gold's runner does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from infrastructure.catalog import load_catalog
from infrastructure.job_metrics import run_and_push
from infrastructure.settings import Settings
from infrastructure.tables import BRONZE_REFERENCE_PRICES, SILVER_REFERENCE_PRICES
from infrastructure.times import Window
from processing import duckdb_engine
from processing.silver import sql

JOB = "silver_reference"
KEY = ("source", "coin_id", "vs_currency", "event_time")
COLUMNS = tuple(f.name for f in SILVER_REFERENCE_PRICES.schema.fields)
ARROW = SILVER_REFERENCE_PRICES.schema.as_arrow()
SORT = ", ".join(
    SILVER_REFERENCE_PRICES.schema.find_column_name(f.source_id)
    for f in SILVER_REFERENCE_PRICES.sort_order.fields
)
REQUIRED = ("source", "coin_id", "vs_currency", "product_id", "event_time", "receive_time", "ingest_time")


def checked_sql(bronze: str, window: Window) -> str:
    """The window's bronze rows with ``price_value`` and ``valid``."""
    missing = " OR ".join(f"p.{c} IS NULL" for c in REQUIRED)
    return f"""SELECT p.*, NOT ({missing}) AND p.price_value IS NOT NULL AND p.price_value > 0 AS valid
    FROM (
      SELECT b.*,
        CASE WHEN b.price RLIKE {sql.literal(sql.DECIMAL_PATTERN)} THEN {sql.parse_money("b.price")} END AS price_value
      FROM {bronze} AS b
      WHERE b.ingest_time >= {sql.timestamp_literal(window.start)}
        AND b.ingest_time < {sql.timestamp_literal(window.end)}
    ) AS p"""


def candidates_sql(checked: str) -> str:
    """Valid rows as silver columns, the first copy (Kafka order) per key, plus ``copies``."""
    typed = {c: f"c.{c}" for c in COLUMNS} | {"price": "c.price_value"}
    select = ", ".join(f"{expr} AS {name}" for name, expr in typed.items())
    partition = ", ".join(f"c.{k}" for k in KEY)
    order = ", ".join(f"c.{c}" for c in sql.LINEAGE)
    return f"""SELECT {", ".join(f"r.{c}" for c in COLUMNS)}, r.copies
    FROM (
      SELECT {select},
        ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {order}) AS winner_rank,
        COUNT(*) OVER (PARTITION BY {partition}) AS copies
      FROM {checked} AS c
      WHERE c.valid
    ) AS r
    WHERE r.winner_rank = 1"""


def new_rows_sql(candidates: str, silver: str, low: datetime, high: datetime) -> str:
    """Candidates whose key silver does not hold yet; the lookup is bounded by the candidates'
    event times (constants, so the scan prunes by the table's event-day partitions)."""
    on = " AND ".join(f"c.{k} = e.{k}" for k in KEY)
    return f"""SELECT {", ".join(f"c.{c}" for c in COLUMNS)}
    FROM {candidates} AS c
    LEFT JOIN (
      SELECT {", ".join(KEY)} FROM {silver}
      WHERE event_time >= {sql.timestamp_literal(low)} AND event_time <= {sql.timestamp_literal(high)}
    ) AS e ON {on}
    WHERE e.source IS NULL"""


@dataclass(frozen=True)
class ReferenceSilverResult:
    """``bronze_rows == rejected + duplicates + inserted + unchanged``."""

    start: datetime
    end: datetime
    bronze_rows: int
    rejected: int  # invalid (missing field, unparsable or non-positive price): left in bronze
    duplicates: int  # valid copies of a key beyond its first in the window
    inserted: int
    unchanged: int  # keys silver already held
    duration_s: float

    def metric_counts(self) -> dict[str, int]:
        return {
            "in": self.bronze_rows, "out": self.inserted, "rejected": self.rejected,
            "duplicates": self.duplicates, "inserted": self.inserted, "unchanged": self.unchanged,
        }  # fmt: skip

    def summary(self) -> str:
        return (
            f"silver reference prices [{self.start.isoformat()}, {self.end.isoformat()}): "
            f"{self.bronze_rows} bronze rows -> {self.inserted} inserted, {self.unchanged} unchanged, "
            f"{self.duplicates} duplicates removed, {self.rejected} rejected in {self.duration_s:.2f} s"
        )


def refine(
    con: duckdb.DuckDBPyConnection, bronze: str, silver: str, window: Window
) -> tuple[pa.Table, dict[str, int]]:
    """The rows to append (silver columns, sort order) and the window's counts; nothing committed."""

    def duck(query: str) -> str:
        return sql.to_dialect(query, "duckdb")

    con.execute(f"CREATE OR REPLACE TEMP TABLE reference_checked AS {duck(checked_sql(bronze, window))}")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE reference_candidates AS {duck(candidates_sql('reference_checked'))}"
    )
    bronze_rows, valid = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE valid) FROM reference_checked"
    ).fetchone()
    keys, low, high = con.execute(
        "SELECT count(*), min(event_time), max(event_time) FROM reference_candidates"
    ).fetchone()
    if keys:
        rows = con.execute(
            f"{duck(new_rows_sql('reference_candidates', silver, low, high))} ORDER BY {SORT}"
        ).to_arrow_table()
    else:
        rows = ARROW.empty_table()
    counts = {
        "bronze_rows": int(bronze_rows),
        "rejected": int(bronze_rows - valid),
        "duplicates": int(valid - keys),
        "inserted": rows.num_rows,
        "unchanged": int(keys - rows.num_rows),
    }
    return rows.select(list(COLUMNS)).cast(ARROW), counts


def run_reference_silver(settings: Settings, window: Window) -> ReferenceSilverResult:
    """Refine ``window`` of ``bronze.reference_prices`` into ``silver.reference_prices`` (one append)."""
    began = time.perf_counter()
    con = duckdb_engine.connect(settings)
    con.execute("SET enable_progress_bar = false")
    alias = duckdb_engine.CATALOG_ALIAS
    try:
        rows, counts = refine(
            con, f"{alias}.{BRONZE_REFERENCE_PRICES.identifier}", f"{alias}.{SILVER_REFERENCE_PRICES.identifier}",
            window,
        )  # fmt: skip
    finally:
        con.close()
    if rows.num_rows:
        load_catalog(settings).load_table(SILVER_REFERENCE_PRICES.identifier).append(rows)
    return ReferenceSilverResult(window.start, window.end, duration_s=time.perf_counter() - began, **counts)


def reference_silver_job(settings: Settings, window: Window) -> ReferenceSilverResult:
    """One run for ``window``, its figures pushed as job ``silver_reference``."""
    return run_and_push(
        settings, JOB, lambda: run_reference_silver(settings, window),
        ReferenceSilverResult.metric_counts, window.end,
    )  # fmt: skip
