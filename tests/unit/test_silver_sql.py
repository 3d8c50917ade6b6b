"""The silver SQL builder: windows, literals, the decimal rule, the winner order, dialect output."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import pytest
import sqlglot

from infrastructure.settings import Settings
from infrastructure.times import Window
from processing.silver import sql
from processing.silver.duckdb_runner import REJECTED_ARROW, SILVER_ARROW, refine
from processing.silver.sql import KeyRange, Rules
from tests.fixtures.lakehouse import W1, W2, known_cases, lineage

RULES = Rules(("BTC-USD", "O'X-USD"), max_event_future_s=60, max_event_age_s=3600)


def test_window_is_utc_half_open_and_refuses_naive_or_empty() -> None:
    parsed = Window.parse("2026-01-01T10:00", "2026-01-01T12:00+01:00")
    assert parsed == Window(datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 1, 11, tzinfo=UTC))
    assert Window(datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))), W1.end).start.tzinfo == UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        Window(datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC))
    with pytest.raises(ValueError, match="empty window"):
        Window(W1.end, W1.start)
    with pytest.raises(ValueError, match="not an ISO 8601"):
        Window.parse("yesterday", "today")


def test_rules_come_from_settings() -> None:
    settings = Settings(_env_file=None, products="btc-usd", silver={"max_event_age_s": 5})
    assert Rules.from_settings(settings) == Rules(("BTC-USD",), 86_400, 5)


@pytest.mark.parametrize(
    ("text", "fits"),
    [
        ("100.5", True),
        ("0.000000000000000001", True),
        ("99999999999999999999.999999999999999999", True),
        ("-1.5", True),  # parsable; rejected later as non-positive
        ("+2", True),
        ("0.1234567890123456789", False),  # 19 fraction digits would round
        ("123456789012345678901", False),  # 21 integer digits overflow decimal(38,18)
        ("1e3", False),
        (" 1", False),
        ("1.", False),
        (".5", False),
        ("", False),
        ("NaN", False),
    ],
)
def test_decimal_rule_accepts_exactly_what_decimal_38_18_holds(text: str, fits: bool) -> None:
    assert bool(re.match(sql.DECIMAL_PATTERN, text)) is fits


@pytest.mark.parametrize(
    "text",
    ["100.5", "0.000000000000000001", "99999999999999999999.999999999999999999", "-99.000000000000000001",
     "+2", "007.10", "-0", "5", "123456789012345678.9"],
)  # fmt: skip
def test_duckdb_spelling_of_the_decimal_parse_is_exact(text: str) -> None:
    assert re.match(sql.DECIMAL_PATTERN, text)
    query = sql.to_dialect(
        f"SELECT {sql.parse_money('x')} AS v, typeof({sql.parse_money('x')}) FROM t", "duckdb"
    )
    con = duckdb.connect()
    con.execute("CREATE TABLE t (x VARCHAR)")
    con.execute("INSERT INTO t VALUES (?)", [text])
    assert con.execute(query).fetchone() == (Decimal(text), "DECIMAL(38,18)")


def test_literals_are_escaped_for_each_dialect() -> None:
    checked = sql.checked_sql("bronze", W1, RULES)
    assert "'O\\'X-USD'" in checked  # Spark escapes with a backslash
    assert "'O''X-USD'" in sql.to_dialect(checked, "duckdb")
    assert sql.timestamp_literal(datetime(2026, 1, 1, 11, tzinfo=timezone(timedelta(hours=1)))) == (
        "TIMESTAMP_LTZ '2026-01-01 10:00:00+00:00'"
    )


def test_every_statement_parses_as_spark_and_transpiles_to_duckdb() -> None:
    statements = [
        sql.checked_sql("cat.bronze.trades", W1, RULES),
        sql.candidates_sql("checked"),
        sql.rejects_sql("checked"),
        sql.key_ranges_sql("candidates"),
        sql.changes_sql(
            "candidates", sql.existing_silver_sql("cat.silver.trades", [KeyRange("c", "p", 1, 9)])
        ),
        sql.new_rejects_sql("rejects", sql.existing_rejects_sql("cat.silver.trades_rejected", W1)),
        sql.merge_trades_sql("cat.silver.trades", "changes"),
        sql.merge_rejects_sql("cat.silver.trades_rejected", "rejects", W1),
    ]
    for statement in statements:
        sqlglot.parse_one(statement, read="spark")
        duck = sql.to_dialect(statement, "duckdb")
        assert "UNIX_MICROS" not in duck and "RLIKE" not in duck and "TIMESTAMP_LTZ" not in duck
        assert sql.PARSE_MONEY not in duck and sql.PARSE_MONEY not in sql.to_dialect(statement, "spark")
    assert "EPOCH_US(c.ingest_time) - EPOCH_US(c.event_time)" in sql.to_dialect(statements[1], "duckdb")
    assert "WHERE 1 = 0" in sql.existing_silver_sql("s", [])


def test_merge_statements_name_every_contract_column() -> None:
    merge = sql.merge_trades_sql("cat.silver.trades", "changes")
    for column in sql.SILVER_COLUMNS:
        assert f"t.{column} = s.{column}" in merge
    assert "WHEN MATCHED AND" in merge and "replaces" not in merge
    rejects = sql.merge_rejects_sql("cat.silver.trades_rejected", "rejects", W1)
    assert "WHEN MATCHED" not in rejects and "t.ingest_time >= TIMESTAMP_LTZ" in rejects


def test_beats_is_the_lexicographic_winner_order() -> None:
    """``beats(a, b)`` evaluated by DuckDB agrees with Python's tuple order on every pair."""
    rows = list(itertools.product(("ws", "backfill", "replay", "other"), ("a", "b"), (0, 1), (5, 7)))
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE r (source VARCHAR, kafka_topic VARCHAR, kafka_partition INT, kafka_offset BIGINT)"
    )
    con.executemany("INSERT INTO r VALUES (?, ?, ?, ?)", rows)
    query = sql.to_dialect(f"SELECT a.*, b.*, {sql.beats('a', 'b')} FROM r AS a CROSS JOIN r AS b", "duckdb")
    rank = {s: i for i, s in enumerate(sql.SOURCE_PREFERENCE)}
    results = con.execute(query).fetchall()
    assert len(results) == len(rows) ** 2
    for row in results:
        a, b, wins = row[:4], row[4:8], row[8]
        key_a = (rank.get(a[0], len(rank)), *a[1:])
        key_b = (rank.get(b[0], len(rank)), *b[1:])
        assert wins is (key_a < key_b), (a, b)


def test_each_row_gets_its_reason_and_one_winner_per_key() -> None:
    """The whole SQL on the known cases, in-memory DuckDB (no storage): reasons and winners."""
    scenario = known_cases()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("bronze_rows", scenario.arrow())
    con.register("no_silver", SILVER_ARROW.empty_table())
    con.register("no_rejects", REJECTED_ARROW.empty_table())
    rules = Rules.from_settings(Settings(_env_file=None))
    whole = Window(W1.start, W2.end)
    refined = refine(con, "bronze_rows", "no_silver", "no_rejects", whole, rules)
    assert {lineage(r): r["reason"] for r in refined.new_rejects.to_pylist()} == scenario.rejects
    winners = {
        (r["exchange"], r["product_id"], r["trade_id"]): lineage(r)
        for r in refined.changes_table().to_pylist()
    }
    assert winners == scenario.winners
    assert refined.valid_rows + refined.rejected == len(scenario.rows)
