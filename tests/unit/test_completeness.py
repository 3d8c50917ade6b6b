"""The trade-id gap finder (SQL run by DuckDB in process), dead-letter splitting and reconciliation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest
import sqlglot

from processing.silver import completeness as c
from processing.silver.completeness import FILLED, OPEN, GapRow, Hole
from processing.silver.sql import to_dialect

H = datetime(2026, 1, 1, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
LOOKBACK = timedelta(hours=6)


def silver(rows: list[tuple]) -> duckdb.DuckDBPyConnection:
    """(trade_id, minutes after H, product, source) rows as a ``silver`` relation."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table = pa.table(
        {
            "exchange": ["coinbase"] * len(rows),
            "product_id": [r[2] if len(r) > 2 else "BTC-USD" for r in rows],
            "trade_id": pa.array([r[0] for r in rows], pa.int64()),
            "event_time": pa.array([H + timedelta(minutes=r[1]) for r in rows], pa.timestamp("us", "UTC")),
            "source": [r[3] if len(r) > 3 else "ws" for r in rows],
        }
    )
    con.register("silver_arrow", table)
    con.execute("CREATE TABLE silver AS SELECT * FROM silver_arrow")
    return con


def holes(con, start: datetime = H, end: datetime = H + HOUR) -> list[Hole]:
    query = to_dialect(c.holes_sql("silver", start, end, LOOKBACK), "duckdb")
    return [Hole(e, p, first, last, hour) for e, p, hour, first, last in con.execute(query).fetchall()]


def test_a_hole_in_the_middle_of_the_hour() -> None:
    con = silver([(1, 1), (2, 2), (6, 3), (7, 4)])
    assert holes(con) == [Hole("coinbase", "BTC-USD", 3, 5, H)]


def test_no_hole_no_row_and_duplicates_are_not_holes() -> None:
    con = silver([(1, 1), (2, 2), (2, 2), (3, 3), (3, 5)])
    assert holes(con) == []


def test_a_hole_across_the_hour_boundary_is_found_once_in_the_hour_after_it() -> None:
    con = silver([(1, -30), (2, -5), (9, 1), (10, 2), (11, 61), (15, 62)])
    previous_hour = holes(con, H - HOUR, H)
    this_hour = holes(con)
    next_hour = holes(con, H + HOUR, H + 2 * HOUR)
    assert previous_hour == []
    assert this_hour == [Hole("coinbase", "BTC-USD", 3, 8, H)]
    assert next_hour == [Hole("coinbase", "BTC-USD", 12, 14, H + HOUR)]
    # checking both hours at once finds each hole once, each in its own hour
    assert holes(con, H, H + 2 * HOUR) == this_hour + next_hour


def test_products_and_the_synthetic_venue_are_separate_sequences() -> None:
    con = silver([(1, 1), (3, 2), (100, 1, "ETH-USD"), (101, 2, "ETH-USD"), (50, 1, "BTC-USD", "synthetic"),
                  (52, 3, "BTC-USD", "synthetic")])  # fmt: skip
    assert holes(con) == [Hole("coinbase", "BTC-USD", 2, 2, H), Hole("synthetic", "BTC-USD", 51, 51, H)]


def test_the_first_trade_without_a_predecessor_is_not_a_hole() -> None:
    # the lookback ends before trade 1: what came before the pipeline started is not ours
    con = silver([(1, -60 * 7), (10, 1), (11, 2)])
    assert holes(con) == []


def test_sql_parses_for_duckdb_and_trino() -> None:
    for statement in (
        c.holes_sql("lake.silver.trades", H, H + HOUR, LOOKBACK),
        c.coverage_sql("lake.silver.trades", "dead", [Hole("coinbase", "BTC-USD", 3, 5, H)]),
        c.rejected_ids_sql("lake.silver.trades_rejected", H),
    ):
        assert to_dialect(statement, "duckdb")
        sqlglot.transpile(statement, read="spark", write="trino", unsupported_level=sqlglot.ErrorLevel.RAISE)


def test_dead_lettered_ids_are_cut_out_of_holes() -> None:
    hole = Hole("coinbase", "BTC-USD", 10, 20, H)
    dead = c.index_dead(
        [("coinbase", "BTC-USD", i) for i in (10, 11, 15, 20, 25)] + [("coinbase", "ETH-USD", 12)]
    )
    missing, refused = c.split_dead_letters([hole], dead)
    assert [(h.first_missing_id, h.last_missing_id) for h in missing] == [(12, 14), (16, 19)]
    assert [(h.first_missing_id, h.last_missing_id) for h in refused] == [(10, 11), (15, 15), (20, 20)]
    # a hole made only of a dead-lettered id is nothing to backfill
    missing, refused = c.split_dead_letters([Hole("coinbase", "BTC-USD", 15, 15, H)], dead)
    assert missing == [] and refused == [Hole("coinbase", "BTC-USD", 15, 15, H)]


def test_coverage_counts_ids_present_in_silver_or_dead_letters() -> None:
    con = silver([(1, 1), (3, 2), (4, 3), (9, 4)])
    con.execute(
        "CREATE TABLE dead AS SELECT 'coinbase' AS exchange, 'BTC-USD' AS product_id, 5::BIGINT AS trade_id"
    )
    wanted = [Hole("coinbase", "BTC-USD", 2, 8, H), Hole("coinbase", "ETH-USD", 2, 8, H)]
    query = to_dialect(c.coverage_sql("silver", "dead", wanted), "duckdb")
    assert con.execute(query).fetchall() == [(0, 3), (1, 0)]  # 3, 4 and the dead-lettered 5


NOW = H + 2 * HOUR
DAY = timedelta(days=1)


def test_reconcile_opens_new_holes_once_and_fills_covered_ones() -> None:
    a, b = Hole("coinbase", "BTC-USD", 3, 5, H), Hole("coinbase", "BTC-USD", 20, 21, H)
    first = c.reconcile([], {}, [a, b], [], H + HOUR, DAY)
    assert [(r.hole, r.status, r.missing_count) for r in first] == [(a, OPEN, 3), (b, OPEN, 2)]
    # found again (b only partly filled: its remainder overlaps the open row): no new rows
    again = c.reconcile(first, {0: 0, 1: 1}, [a, Hole("coinbase", "BTC-USD", 21, 21, H)], [], NOW, DAY)
    assert [(r.hole, r.status, r.missing_count) for r in again] == [(a, OPEN, 3), (b, OPEN, 1)]
    # a fully covered open row is filled, with the time it was seen filled
    closed = c.reconcile(again, {0: 3, 1: 2}, [], [], NOW, DAY)
    assert [(r.status, r.missing_count, r.filled_at) for r in closed] == [(FILLED, 0, NOW)] * 2
    # closed rows age out; open ones never do
    assert c.reconcile(closed, {}, [], [], NOW + 2 * DAY, DAY) == []


def test_reconcile_records_dead_lettered_ids_once_and_never_as_open() -> None:
    d = Hole("coinbase", "BTC-USD", 7, 7, H)
    rows = c.reconcile([], {}, [], [d], NOW, DAY)
    assert [(r.hole, r.status) for r in rows] == [(d, c.DEAD_LETTERED)]
    assert c.reconcile(rows, {}, [], [d], NOW, DAY) == rows
    assert c.backfill_requests(rows, ["coinbase"], {"coinbase": ["BTC-USD"]}, 100, 10, "t") == []


def test_rows_round_trip_through_records() -> None:
    row = GapRow(Hole("coinbase", "BTC-USD", 3, 5, H), 3, NOW, OPEN, None, NOW)
    assert GapRow.from_record(row.as_record()) == row


def test_backfill_requests_only_for_rest_exchanges_configured_products_and_bounded() -> None:
    rows = c.reconcile(
        [], {},
        [Hole("coinbase", "BTC-USD", 3, 5, H), Hole("synthetic", "BTC-USD", 3, 5, H),
         Hole("coinbase", "XRP-USD", 3, 5, H), Hole("coinbase", "ETH-USD", 1, 10_000, H),
         Hole("coinbase", "ETH-USD", 20_000, 20_001, H + HOUR)],
        [], NOW, DAY,
    )  # fmt: skip
    products = {"coinbase": ["BTC-USD", "ETH-USD"]}
    requests = c.backfill_requests(rows, ["coinbase"], products, 1000, 10, "20260101T12")
    assert [r.hole.product_id for r in requests] == ["BTC-USD", "ETH-USD"]
    kwargs = requests[0].trigger_kwargs()
    assert kwargs == {
        "trigger_run_id": "gap__coinbase__BTC-USD__3-5__20260101T12",
        "conf": {"exchange": "coinbase", "product": "BTC-USD", "start": H.isoformat(),
                 "end": (H + HOUR).isoformat(), "first_id": 3, "last_id": 5},
    }  # fmt: skip
    assert len(c.backfill_requests(rows, ["coinbase"], products, 1000, 1, "t")) == 1


def test_binance_holes_are_backfilled_on_binance() -> None:
    """Binance's product ids come from its symbol metadata, not the settings' Coinbase products: its
    holes go to the backfill with their exchange (its backfill refuses a symbol not configured)."""
    rows = c.reconcile([], {}, [Hole("binance", "BTC-USDT", 7, 9, H), Hole("synthetic-binance", "BTC-USDT", 7, 9, H)],
                       [], NOW, DAY)  # fmt: skip
    requests = c.backfill_requests(rows, ["coinbase", "binance"], {"coinbase": ["BTC-USD"]}, 1000, 10, "t")
    assert [r.trigger_kwargs()["conf"]["exchange"] for r in requests] == ["binance"]
    assert requests[0].trigger_kwargs()["trigger_run_id"] == "gap__binance__BTC-USDT__7-9__t"


def test_coverage_needs_a_hole() -> None:
    with pytest.raises(ValueError):
        c.coverage_sql("silver", "dead", [])
