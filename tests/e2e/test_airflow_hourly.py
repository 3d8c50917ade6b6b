"""``airflow dags test crypto_hourly`` runs silver -> gold -> quality (the audit) -> publish for one
hour of bronze, for real.

Bronze holds synthetic trades ingested in one hour H (plus one row just before and one just after
it); the DAG runs in a child process with its own AIRFLOW_HOME (SQLite) against a SeaweedFS of this
module's own (gold's candles must see no other test's silver rows). Checked: the gold candles equal
the ones computed here from the trades with ``Decimal``; a second run of the hour changes nothing;
a run over corrupted silver fails at the quality task with the failed expectation in its output,
after silver and gold succeeded, and publishes nothing: gold's tables keep their snapshots.
"""

from __future__ import annotations

import decimal
import json
import sqlite3
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from infrastructure import services
from infrastructure.bootstrap import ensure_tables
from infrastructure.catalog import load_catalog
from infrastructure.settings import Settings
from infrastructure.tables import BRONZE_TRADES, SILVER_TRADES, SILVER_TRADES_REJECTED
from processing.duckdb_engine import connect
from tests.fixtures.airflow import dag_test_env, run_airflow, task_states
from tests.fixtures.lakehouse import BronzeBuilder
from tests.fixtures.services import launch_seaweedfs, settings_for

HOUR = datetime(2026, 11, 20, 10, tzinfo=UTC)
# `airflow dags test` infers a manual run's interval as the last complete hour before its logical
# date: logical date H+1 is the run that owns [H, H+1)
LOGICAL_DATE = HOUR + timedelta(hours=1)
PRODUCTS = ("BTC-USD", "ETH-USD")
GOLD_TABLES = ("gold.ohlcv_1m", "gold.ohlcv_1h")
CANDLE_COLUMNS = ("open", "high", "low", "close", "volume", "notional", "vwap", "trade_count")


@dataclass(frozen=True)
class HourlyLake:
    settings: Settings
    env: dict[str, str]
    home: Path
    in_hour: list[dict]  # the bronze rows ingested in [H, H+1)


def bronze_rows() -> tuple[list[dict], list[dict]]:
    """(all bronze rows, those ingested in the hour): 3 minutes x 2 products, 5 trades a minute,
    exact 2-decimal prices and 4-decimal sizes (so every product is exact), ties in event time."""
    b = BronzeBuilder()
    trade_id = 500
    for minute in range(3):
        for p, product in enumerate(PRODUCTS):
            for n in range(5):
                trade_id += 1
                ingest = HOUR + timedelta(minutes=minute, seconds=10 * n + 1)
                # trades 2 and 3 share an event time: open/close fall back to trade_id
                event = HOUR + timedelta(minutes=minute, seconds=10 * min(n, 2))
                b.add(
                    trade_id,
                    ingest,
                    product_id=product,
                    price=f"{(1000 if p == 0 else 50) + (trade_id * 37) % 100}.{trade_id % 100:02d}",
                    size=f"0.{(trade_id * 7919) % 10000:04d}",
                    side="buy" if n % 2 else "sell",
                    event_time=event,
                    partition=p,
                )
    in_hour = list(b.rows)
    b.add(900, HOUR - timedelta(seconds=1), product_id="BTC-USD")  # previous hour: not this run's
    b.add(901, HOUR + timedelta(hours=1), product_id="BTC-USD")  # next hour: end is exclusive
    return b.rows, in_hour


def expected_candles(rows: list[dict]) -> dict[tuple, dict]:
    """One-minute candles by (product, minute), computed with Decimal from the bronze strings."""
    by_minute: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        by_minute[(r["product_id"], r["event_time"].replace(second=0, microsecond=0))].append(r)
    candles = {}
    with decimal.localcontext(prec=80, rounding=decimal.ROUND_HALF_UP):
        for key, trades in by_minute.items():
            ordered = sorted(trades, key=lambda r: (r["event_time"], r["trade_id"]))
            prices = [Decimal(r["price"]) for r in ordered]
            volume = sum(Decimal(r["size"]) for r in ordered)
            notional = sum(Decimal(r["price"]) * Decimal(r["size"]) for r in ordered)
            candles[key] = {
                "open": prices[0],
                "high": max(prices),
                "low": min(prices),
                "close": prices[-1],
                "volume": volume,
                "notional": notional,
                "vwap": (notional / volume).quantize(Decimal(1).scaleb(-18)),
                "trade_count": len(ordered),
            }
    return candles


@pytest.fixture(scope="module")
def hourly_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HourlyLake]:
    seaweedfs = launch_seaweedfs(tmp_path_factory.mktemp("hourly-seaweedfs"))
    try:
        data_dir = tmp_path_factory.mktemp("hourly-data")
        settings = settings_for(
            seaweedfs=seaweedfs,
            data_dir=data_dir,
            products=list(PRODUCTS),
            # no gateway listens here: pushes fail with a warning, never reach a user's stack
            metrics={"pushgateway_url": f"http://127.0.0.1:{services.free_port()}"},
            orchestration={"start_date": HOUR - timedelta(days=1)},
        )
        catalog = load_catalog(settings)
        ensure_tables(catalog)
        rows, in_hour = bronze_rows()
        catalog.load_table(BRONZE_TRADES.identifier).append(
            pa.Table.from_pylist(rows, schema=BRONZE_TRADES.schema.as_arrow())
        )
        home = tmp_path_factory.mktemp("hourly-airflow")
        env = dag_test_env(settings, home)
        migrate = run_airflow(env, "db", "migrate")
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        yield HourlyLake(settings, env, home, in_hour)
    finally:
        seaweedfs.stop()


def dags_test(lake: HourlyLake) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """Run the hour through ``airflow dags test``; returns the process and each task's final state."""
    proc = run_airflow(lake.env, "dags", "test", "crypto_hourly", LOGICAL_DATE.isoformat())
    with sqlite3.connect(lake.home / "airflow.db") as db:
        interval = db.execute(
            "select data_interval_start, data_interval_end from dag_run"
            " where dag_id = 'crypto_hourly' order by id desc limit 1"
        ).fetchone()
    assert [datetime.fromisoformat(v).replace(tzinfo=UTC) for v in interval] == [HOUR, LOGICAL_DATE]
    return proc, task_states(lake.home, "crypto_hourly")


def table_rows(settings: Settings, identifier: str) -> list[tuple]:
    con = connect(settings)
    try:
        return sorted(con.execute(f"select * from lake.{identifier}").fetchall(), key=repr)
    finally:
        con.close()


def snapshot(settings: Settings) -> dict[str, list[tuple]]:
    tables = (SILVER_TRADES.identifier, SILVER_TRADES_REJECTED.identifier, *GOLD_TABLES)
    return {t: table_rows(settings, t) for t in tables}


HOURLY_OK = {
    "silver": "success", "silver_reference": "success", "gold": "success", "quality": "success",
    "publish": "success", "completeness": "success",
}  # fmt: skip
# the rows' ids alternate between the products five at a time, so each product's ids have two holes
# of five: the hour's completeness check triggers one crypto_backfill run per hole, by trade id
HOLES = {("BTC-USD", 506, 510), ("BTC-USD", 516, 520), ("ETH-USD", 511, 515), ("ETH-USD", 521, 525)}


def pipeline_states(states: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in states.items() if not k.startswith("backfill_gaps[")}


def trigger_states(states: dict[str, str]) -> list[str]:
    return [v for k, v in sorted(states.items()) if k.startswith("backfill_gaps[")]


def triggered_backfills(lake: HourlyLake) -> set[tuple[str, int, int]]:
    with sqlite3.connect(lake.home / "airflow.db") as db:
        rows = db.execute("select conf from dag_run where dag_id = 'crypto_backfill'").fetchall()
    confs = [json.loads(conf) for (conf,) in rows]
    return {(c["product"], c["first_id"], c["last_id"]) for c in confs}


@pytest.fixture(scope="module")
def first_run(hourly_lake: HourlyLake):
    proc, states = dags_test(hourly_lake)
    assert pipeline_states(states) == HOURLY_OK, proc.stdout[-6000:] + proc.stderr[-6000:]
    assert trigger_states(states) == ["success"] * len(HOLES)
    assert triggered_backfills(hourly_lake) == HOLES
    return snapshot(hourly_lake.settings)


def test_the_hour_becomes_the_expected_candles(hourly_lake: HourlyLake, first_run) -> None:
    silver = first_run[SILVER_TRADES.identifier]
    assert len(silver) == len(hourly_lake.in_hour)  # the rows just outside the hour are not this run's
    con = connect(hourly_lake.settings)
    try:
        cursor = con.execute(
            f"select product_id, candle_start, {', '.join(CANDLE_COLUMNS)} from lake.gold.ohlcv_1m"
        )
        got = {
            (product, start.astimezone(UTC)): dict(zip(CANDLE_COLUMNS, values, strict=True))
            for product, start, *values in cursor.fetchall()
        }
        hourly = con.execute(
            "select product_id, candle_start, trade_count, volume from lake.gold.ohlcv_1h"
        ).fetchall()
    finally:
        con.close()
    expected = expected_candles(hourly_lake.in_hour)
    assert got == expected
    assert sorted((p, s.astimezone(UTC), n, v) for p, s, n, v in hourly) == sorted(
        (
            p,
            HOUR,
            sum(c["trade_count"] for (q, _), c in expected.items() if q == p),
            sum(c["volume"] for (q, _), c in expected.items() if q == p),
        )
        for p in PRODUCTS
    )


def test_a_second_run_of_the_hour_changes_nothing(hourly_lake: HourlyLake, first_run) -> None:
    silver_snapshot = (
        load_catalog(hourly_lake.settings).load_table(SILVER_TRADES.identifier).current_snapshot()
    )
    proc, states = dags_test(hourly_lake)
    assert pipeline_states(states) == HOURLY_OK, proc.stdout[-6000:]
    # the same holes again: their backfill runs exist already (run ids name the hole and the hour)
    assert trigger_states(states) == ["skipped"] * len(HOLES)
    assert triggered_backfills(hourly_lake) == HOLES
    assert snapshot(hourly_lake.settings) == first_run
    again = load_catalog(hourly_lake.settings).load_table(SILVER_TRADES.identifier).current_snapshot()
    assert again.snapshot_id == silver_snapshot.snapshot_id  # silver did not even commit


def test_corrupted_silver_fails_at_quality_with_a_reason(hourly_lake: HourlyLake, first_run) -> None:
    # a silver row the silver job would have rejected (unknown product), ingested in the hour; it
    # has no bronze row, so re-running silver for the hour leaves it in place
    template = first_run[SILVER_TRADES.identifier][0]
    row = dict(zip([f.name for f in SILVER_TRADES.schema.fields], template, strict=True))
    row.update(product_id="XRP-USD", trade_id=999_999, kafka_offset=10_000)
    load_catalog(hourly_lake.settings).load_table(SILVER_TRADES.identifier).append(
        pa.Table.from_pylist([row], schema=SILVER_TRADES.schema.as_arrow())
    )
    catalog = load_catalog(hourly_lake.settings)
    gold_before = {t: catalog.load_table(t).current_snapshot().snapshot_id for t in GOLD_TABLES}
    proc, states = dags_test(hourly_lake)
    output = proc.stdout + proc.stderr
    # nothing after the audit runs (the mapped trigger is never expanded: one unmapped instance)
    after = ("publish", "completeness", "backfill_gaps")
    failed = {"quality": "failed", **dict.fromkeys(after, "upstream_failed")}
    assert pipeline_states(states) == {**HOURLY_OK, **failed}, output[-6000:]
    catalog = load_catalog(hourly_lake.settings)
    assert {t: catalog.load_table(t).current_snapshot().snapshot_id for t in GOLD_TABLES} == gold_before
    assert "quality checks failed" in output
    assert "silver_trades: FAILED" in output
    assert "expect_column_values_to_be_in_set(column=product_id" in output and "XRP-USD" in output
