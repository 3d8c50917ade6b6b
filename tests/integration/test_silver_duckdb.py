"""The embedded silver engine against real SeaweedFS + Iceberg REST: winners, rejects, late data,
idempotency and overlapping windows, with whole-table comparisons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from infrastructure.times import Window
from processing.silver.result import SilverResult
from processing.silver.run import run_silver
from tests.fixtures.lakehouse import HOUR, T0, W1, W2, Lake, known_cases, lineage


def refine(lake: Lake, window: Window) -> SilverResult:
    result = run_silver(lake.settings, window.start, window.end, engine="duckdb", tables=lake.tables)
    assert result.bronze_rows == (
        result.rejected + result.duplicates + result.inserted + result.replaced + result.unchanged
    )
    return result


def winners(rows: list[dict]) -> dict[tuple, tuple]:
    return {(r["exchange"], r["product_id"], r["trade_id"]): lineage(r) for r in rows}


def test_two_windows_keep_the_expected_winners_and_rejects(lake: Lake) -> None:
    scenario = known_cases()
    lake.append_bronze(scenario.rows)

    first = refine(lake, W1)
    silver = lake.silver()
    assert len(silver) == len(winners(silver))  # one row per key
    assert winners(silver) == scenario.winners_w1
    w1_rejects = {lineage(r): r["reason"] for r in lake.rejected()}
    assert w1_rejects == {k: v for k, v in scenario.rejects.items() if k in w1_rejects}
    assert first.inserted == len(scenario.winners_w1) and first.replaced == 0
    assert first.duplicates == 2  # the ws re-delivery and the outranked backfill

    second = refine(lake, W2)
    silver = lake.silver()
    assert winners(silver) == scenario.winners
    assert {lineage(r): r["reason"] for r in lake.rejected()} == scenario.rejects
    assert (second.replaced, second.unchanged) == (
        1,
        2,
    )  # ws beats backfill; replay and late re-delivery lose

    by_key = {(r["product_id"], r["trade_id"]): r for r in silver}
    tiny = by_key[("BTC-USD", 6)]
    assert tiny["price"] == Decimal("0.000000000000000001")
    assert tiny["size"] == Decimal("99999999999999999999.999999999999999999")
    # event .9 ms before the minute, ingest 1.1 ms after: whole milliseconds between truncated instants
    assert by_key[("BTC-USD", 1)]["ingest_latency_ms"] == 2
    late = by_key[("BTC-USD", 4)]
    assert late["event_time"] == datetime(2025, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)
    assert late["ingest_latency_ms"] == (T0 + timedelta(minutes=7) - late["event_time"]) // timedelta(
        milliseconds=1
    )
    assert by_key[("ETH-USD", 10)]["source"] == "ws" and by_key[("ETH-USD", 10)]["side"] == "sell"


def test_every_bronze_row_is_in_silver_or_rejected_exactly_once(lake: Lake) -> None:
    scenario = known_cases()
    lake.append_bronze(scenario.rows)
    for window in (W1, W2):
        refine(lake, window)
    silver_keys = set(winners(lake.silver()))
    rejected = [lineage(r) for r in lake.rejected()]
    assert len(rejected) == len(set(rejected))
    assert set(rejected) == set(scenario.rejects)
    valid_keys = {
        (r["exchange"], r["product_id"], r["trade_id"]) for r in scenario.rows if lineage(r) not in rejected
    }
    assert silver_keys == valid_keys  # every valid row's trade is in silver, nothing else is
    for row in scenario.rows:
        assert (
            lineage(row) in rejected or (row["exchange"], row["product_id"], row["trade_id"]) in silver_keys
        )


def test_rerun_and_overlapping_windows_leave_identical_tables(lake: Lake) -> None:
    lake.append_bronze(known_cases().rows)
    refine(lake, W1)
    refine(lake, W2)
    silver, rejected, snapshots = lake.silver(), lake.rejected(), lake.snapshot_ids()

    again = [refine(lake, W1), refine(lake, W2)]
    assert [r.written + r.rejected_new for r in again] == [0, 0]
    assert lake.snapshot_ids() == snapshots  # nothing to change, nothing committed

    for window in (Window(T0 + HOUR / 2, T0 + 3 * HOUR / 2), Window(T0 - HOUR, T0 + 2 * HOUR)):
        refine(lake, window)
        assert lake.silver() == silver
        assert lake.rejected() == rejected


def test_window_order_does_not_change_the_result(lake: Lake, seaweedfs) -> None:
    from tests.fixtures.lakehouse import create_tables

    rows = known_cases().rows
    lake.append_bronze(rows)
    refine(lake, W1)
    refine(lake, W2)

    reverse = Lake(
        lake.settings, lake.catalog, create_tables(lake.catalog, lake.tables.bronze.split(".")[0] + "r")
    )
    reverse.append_bronze(rows)
    refine(reverse, W2)
    refine(reverse, W1)
    assert reverse.silver() == lake.silver()
    assert reverse.rejected() == lake.rejected()


def test_an_empty_window_changes_nothing(lake: Lake) -> None:
    lake.append_bronze(known_cases().rows)
    result = refine(lake, Window(T0 - 2 * HOUR, T0 - HOUR))
    assert result.bronze_rows == 0
    assert lake.snapshot_ids() == (None, None)
