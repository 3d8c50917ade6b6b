"""Gold against an independent computation: every 1m and 1h candle and every daily metric equals
plain ``Decimal`` arithmetic over the raw trades (duplicates, rejects and late arrivals included),
after a first build and an incremental build that had to absorb late trades."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from itertools import pairwise

import pytest

from processing.duckdb_engine import connect
from processing.gold import run_gold
from tests.fixtures.gold import RawTrade, expected_silver

Q18 = Decimal("1e-18")


def accepted(raw: list[RawTrade], products: tuple[str, ...]) -> list[RawTrade]:
    """Valid trades, once per (exchange, product_id, trade_id)."""
    seen: dict[tuple, RawTrade] = {}
    for t in raw:
        if Decimal(t.price) > 0 and Decimal(t.size) > 0 and t.product_id in products:
            seen.setdefault((t.exchange, t.product_id, t.trade_id), t)
    return list(seen.values())


def divide(n: Decimal, d: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 100
        return (n / d).quantize(Q18, rounding=ROUND_HALF_UP)


def minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def day(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def reference_candles(trades: list[RawTrade], bucket: Callable[[datetime], datetime]) -> dict[tuple, dict]:
    groups: dict[tuple, list[RawTrade]] = defaultdict(list)
    for t in trades:
        groups[(t.exchange, t.product_id, bucket(t.event_time))].append(t)
    out = {}
    for key, group in groups.items():
        group.sort(key=lambda t: (t.event_time, t.trade_id))
        prices = [Decimal(t.price) for t in group]
        volume = sum((Decimal(t.size) for t in group), Decimal(0))
        notional = sum((Decimal(t.price) * Decimal(t.size) for t in group), Decimal(0))
        buy = sum((Decimal(t.size) for t in group if t.side == "buy"), Decimal(0))
        out[key] = {
            "open": prices[0],
            "high": max(prices),
            "low": min(prices),
            "close": prices[-1],
            "volume": volume,
            "vwap": divide(notional, volume),
            "trade_count": len(group),
            "buy_volume": buy,
            "sell_volume": volume - buy,
        }
    return out


def gold_rows(settings, sql: str) -> dict[tuple, dict]:
    con = connect(settings)
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    con.close()
    return {tuple(r.pop(k) for k in ("exchange", "product_id", "start")): r for r in rows}


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CANDLE_COLUMNS = "open, high, low, close, volume, vwap, trade_count, buy_volume, sell_volume"


@pytest.fixture(scope="module")
def trades(gold_lakehouse) -> list[RawTrade]:
    return accepted(gold_lakehouse.raw, gold_lakehouse.settings.products)


def test_silver_kept_the_expected_copies_and_rejected_the_expected_rows(gold_lakehouse) -> None:
    """The gold below was built from what the real silver job made of bronze: check that first."""
    winners, rejects = expected_silver(gold_lakehouse.raw)
    con = connect(gold_lakehouse.settings)
    silver = set(con.execute("SELECT product_id, trade_id, kafka_offset FROM lake.silver.trades").fetchall())
    rejected = set(con.execute("SELECT kafka_offset, reason FROM lake.silver.trades_rejected").fetchall())
    assert silver == winners
    assert rejected == rejects


def test_both_builds_pass_every_dbt_test(gold_lakehouse) -> None:
    for build in (gold_lakehouse.first_build, gold_lakehouse.second_build):
        assert build.success, build.summary()
        assert build.statuses.get("pass", 0) >= 60  # data tests + unit tests ran, not just models


def test_the_second_batch_really_is_late(gold_lakehouse, trades) -> None:
    """Guard for the tests below: late trades land in minutes and days the first build already had."""
    first_ingest = {t.trade_id: t for t in trades if t.source == "ws"}
    late = [t for t in trades if t.ingest_time == max(x.ingest_time for x in trades)]
    minutes_before = {(t.product_id, minute(t.event_time)) for t in first_ingest.values() if t not in late}
    assert sum((t.product_id, minute(t.event_time)) in minutes_before for t in late) >= 5
    assert {day(t.event_time) for t in late} == {day(t.event_time) for t in trades}


@pytest.mark.parametrize(
    ("model", "bucket"),
    [("ohlcv_1m", minute), ("ohlcv_1h", hour)],
)
def test_every_candle_equals_the_decimal_reference(gold_lakehouse, trades, model, bucket) -> None:
    expected = reference_candles(trades, bucket)
    actual = gold_rows(
        gold_lakehouse.settings,
        f"select exchange, product_id, candle_start as start, {CANDLE_COLUMNS} from lake.gold.{model}",
    )
    assert actual.keys() == expected.keys()
    mismatches = {k: (actual[k], v) for k, v in expected.items() if actual[k] != v}
    assert not mismatches, (
        f"{len(mismatches)} of {len(expected)} candles differ, e.g. {next(iter(mismatches.items()))}"
    )


def test_daily_metrics_equal_the_decimal_reference(gold_lakehouse, trades) -> None:
    days = reference_candles(trades, day)
    minutes = reference_candles(trades, minute)
    actual = gold_rows(
        gold_lakehouse.settings,
        "select exchange, product_id, day_start as start, open, high, low, close, volume, vwap,"
        " trade_count, day_return, realized_volatility from lake.gold.daily_metrics",
    )
    assert actual.keys() == days.keys()
    for key, want in days.items():
        got = actual[key]
        for column in ("open", "high", "low", "close", "volume", "vwap", "trade_count"):
            assert got[column] == want[column], (key, column)
        assert got["day_return"] == divide(want["close"] - want["open"], want["open"]), key
        closes = [c["close"] for (e, p, m), c in sorted(minutes.items()) if (e, p, day(m)) == key]
        returns = [math.log(float(b) / float(a)) for a, b in pairwise(closes)]
        assert len(returns) > 10
        assert got["realized_volatility"] == pytest.approx(math.sqrt(sum(r * r for r in returns)), rel=1e-9)


def test_orderflow_and_latest_prices(gold_lakehouse, trades) -> None:
    minutes = reference_candles(trades, minute)
    flow = gold_rows(
        gold_lakehouse.settings,
        "select exchange, product_id, candle_start as start, buy_volume, sell_volume, imbalance_ratio"
        " from lake.gold.orderflow_1m",
    )
    assert flow.keys() == minutes.keys()
    for key, c in minutes.items():
        imbalance = divide(c["buy_volume"] - c["sell_volume"], c["volume"])
        assert flow[key] == {
            "buy_volume": c["buy_volume"],
            "sell_volume": c["sell_volume"],
            "imbalance_ratio": imbalance,
        }
    latest = {}
    for t in sorted(trades, key=lambda t: (t.event_time, t.trade_id)):
        latest[(t.exchange, t.product_id)] = Decimal(t.price)
    con = connect(gold_lakehouse.settings)
    got = {
        (e, p): price
        for e, p, price in con.execute(
            "select exchange, product_id, price from lake.gold.latest_prices"
        ).fetchall()
    }
    assert got == latest


def test_ingestion_latency_and_pipeline_health(gold_lakehouse, trades) -> None:
    per_minute: dict[tuple, list[int]] = defaultdict(list)
    for t in trades:
        per_minute[(t.exchange, t.product_id, minute(t.event_time))].append(
            (t.ingest_time - t.event_time) // timedelta(milliseconds=1)
        )
    latency = gold_rows(
        gold_lakehouse.settings,
        "select exchange, product_id, candle_start as start, trade_count, latency_max_ms, latency_p50_ms,"
        " kafka_wait_max_ms from lake.gold.ingestion_latency_1m",
    )
    # the fixture's Kafka record time is event time + 60 ms (tests/fixtures/gold.py); the wait is
    # dbt.datediff's: whole milliseconds between the two instants each truncated to the millisecond
    waits: dict[tuple, list[int]] = defaultdict(list)
    for t in trades:
        ms = timedelta(milliseconds=1)
        kafka = t.event_time + 60 * ms
        waits[(t.exchange, t.product_id, minute(t.event_time))].append(
            (t.ingest_time - EPOCH) // ms - (kafka - EPOCH) // ms
        )
    assert latency.keys() == per_minute.keys()
    for key, values in per_minute.items():
        assert latency[key]["trade_count"] == len(values)
        assert latency[key]["latency_max_ms"] == max(values)
        assert latency[key]["latency_p50_ms"] in values  # a discrete quantile is one of the values
        assert latency[key]["kafka_wait_max_ms"] == max(waits[key])
    con = connect(gold_lakehouse.settings)
    health = dict(con.execute("select stage, row_count from lake.gold.pipeline_health").fetchall())
    assert health == {
        "bronze": len(gold_lakehouse.raw),
        "silver": len(trades),
        "silver_rejected": 3,
        "gold_ohlcv_1m": len(trades),
    }


def test_a_full_refresh_rebuilds_the_same_gold(gold_lakehouse, trades) -> None:
    """Last in this module: `lakehouse gold --full-refresh` over existing incremental tables.

    DuckDB's Iceberg catalog cannot rename a table, which the stock incremental full refresh does."""
    result = run_gold(gold_lakehouse.settings, full_refresh=True)
    assert result.success, result.summary()
    actual = gold_rows(
        gold_lakehouse.settings,
        f"select exchange, product_id, candle_start as start, {CANDLE_COLUMNS} from lake.gold.ohlcv_1m",
    )
    assert actual == reference_candles(trades, minute)
