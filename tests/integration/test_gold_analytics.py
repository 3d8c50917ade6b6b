"""The analytic gold models against an independent computation over the raw trades, like the candles
in test_gold.py: price statistics, moving averages (and an incremental run equal to a full one),
trailing-24-hour figures, the hourly volume heatmap, 5-minute pipeline health and the alert facts
gold pushes to Prometheus."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from prometheus_client import CollectorRegistry

from processing.duckdb_engine import connect
from processing.gold import DBT_PROJECT_DIR, alert_facts, market_gauges, run_gold
from tests.fixtures.gold import RawTrade
from tests.integration.test_gold import accepted, divide, gold_rows, hour, minute, reference_candles

WINDOWS = (20, 50)  # dbt_project.yml's moving_average_windows
EMA_LOOKBACK_FACTOR = 4
FIVE_MINUTES = timedelta(minutes=5)


@pytest.fixture(scope="module")
def trades(gold_lakehouse) -> list[RawTrade]:
    return accepted(gold_lakehouse.raw, gold_lakehouse.settings.products)


def five(t: datetime) -> datetime:
    return t.replace(minute=t.minute - t.minute % 5, second=0, microsecond=0)


def by_product(candles: dict[tuple, dict]) -> dict[tuple, list[tuple[datetime, dict]]]:
    series: dict[tuple, list] = defaultdict(list)
    for (exchange, product, start), candle in sorted(candles.items()):
        series[(exchange, product)].append((start, candle))
    return series


def test_price_stats_equal_the_decimal_reference(gold_lakehouse, trades) -> None:
    groups: dict[tuple, list[RawTrade]] = defaultdict(list)
    for t in trades:
        groups[(t.exchange, t.product_id, minute(t.event_time))].append(t)
    candles = reference_candles(trades, minute)
    actual = gold_rows(
        gold_lakehouse.settings,
        "select exchange, product_id, candle_start as start, avg_price, price_change, range_ratio,"
        " price_stddev, trade_count from lake.gold.price_stats_1m",
    )
    assert actual.keys() == groups.keys()
    for key, group in groups.items():
        prices = [Decimal(t.price) for t in group]
        c = candles[key]
        got = actual[key]
        assert got["avg_price"] == divide(sum(prices, Decimal(0)), Decimal(len(prices))), key
        assert got["price_change"] == divide(c["close"] - c["open"], c["open"]), key
        assert got["range_ratio"] == divide(c["high"] - c["low"], c["open"]), key
        assert got["trade_count"] == len(group)
        if len(group) == 1:
            assert got["price_stddev"] is None
        else:
            assert got["price_stddev"] == pytest.approx(
                statistics.stdev(float(p) for p in prices), rel=1e-9, abs=1e-12
            )
    assert sum(1 for g in groups.values() if len(g) > 1) > 50  # the deviation was really exercised


def reference_moving_averages(trades: list[RawTrade]) -> dict[tuple, dict]:
    out = {}
    for (exchange, product), series in by_product(reference_candles(trades, minute)).items():
        closes = [c["close"] for _, c in series]
        for i, (start, _) in enumerate(series):
            row: dict = {"close": closes[i]}
            for w in WINDOWS:
                if i + 1 < w:
                    row[f"sma_{w}"] = row[f"ema_{w}"] = None
                    continue
                row[f"sma_{w}"] = divide(sum(closes[i - w + 1 : i + 1], Decimal(0)), Decimal(w))
                decay = 1 - 2 / (w + 1)
                back = range(min(w * EMA_LOOKBACK_FACTOR, i + 1))
                row[f"ema_{w}"] = sum(decay**j * float(closes[i - j]) for j in back) / sum(
                    decay**j for j in back
                )
            fast, slow = row[f"sma_{WINDOWS[0]}"], row[f"sma_{WINDOWS[-1]}"]
            row["trend"] = (
                None
                if fast is None or slow is None
                else "up"
                if fast > slow
                else "down"
                if fast < slow
                else "flat"
            )
            out[(exchange, product, start)] = row
    return out


MOVING_AVERAGES_SQL = (
    "select exchange, product_id, candle_start as start, close, sma_20, ema_20, sma_50, ema_50, trend"
    " from lake.gold.moving_averages_1m"
)


def assert_moving_averages(actual: dict[tuple, dict], expected: dict[tuple, dict]) -> None:
    assert actual.keys() == expected.keys()
    for key, want in expected.items():
        got = actual[key]
        for column, value in want.items():
            if column.startswith("ema_") and value is not None:
                assert got[column] == pytest.approx(value, rel=1e-12), (key, column)
            else:
                assert got[column] == value, (key, column)


def test_moving_averages_equal_the_reference(gold_lakehouse, trades) -> None:
    expected = reference_moving_averages(trades)
    assert_moving_averages(gold_rows(gold_lakehouse.settings, MOVING_AVERAGES_SQL), expected)
    trends = {row["trend"] for row in expected.values()}
    assert {"up", "down", None} <= trends  # both sides of the crossover occur in the data
    # the EMA's bounded lookback is really in play: series longer than the fast window's lookback
    assert (
        min(sum(1 for k in expected if k[:2] == p) for p in {k[:2] for k in expected})
        > WINDOWS[0] * EMA_LOOKBACK_FACTOR
    )


def test_an_incremental_run_computes_what_a_full_rebuild_computes(gold_lakehouse, trades) -> None:
    """Forget the late batch's rows in moving_averages_1m, as if the build before it were the last,
    and let an incremental run catch up: late candles shift every window after them, so the run
    recomputes from the earliest one on, over the bounded history before it."""
    settings = gold_lakehouse.settings
    con = connect(settings, read_only=False)
    newest = con.execute("select max(max_ingest_time) from lake.gold.moving_averages_1m").fetchone()[0]
    con.execute("delete from lake.gold.moving_averages_1m where max_ingest_time = ?", [newest])
    left = con.execute("select count(*) from lake.gold.moving_averages_1m").fetchone()[0]
    con.close()
    expected = reference_moving_averages(trades)
    assert 0 < left < len(expected) - 20
    result = run_gold(settings, select="moving_averages_1m", lookback_hours=0)
    assert result.success, result.summary()
    compiled = (
        settings.data_dir.resolve() / "dbt/target/compiled/lakehouse_gold/models/marts/moving_averages_1m.sql"
    )
    assert "first_changed" in compiled.read_text()  # the incremental query ran, not a rebuild
    assert_moving_averages(gold_rows(settings, MOVING_AVERAGES_SQL), expected)


def test_the_windows_are_configurable() -> None:
    project = (DBT_PROJECT_DIR / "dbt_project.yml").read_text()
    assert f"moving_average_windows: [{WINDOWS[0]}, {WINDOWS[1]}]" in project
    assert f"ema_lookback_factor: {EMA_LOOKBACK_FACTOR}" in project


def hourly_reference(trades: list[RawTrade]) -> dict[tuple, dict]:
    """Per (exchange, product, hour): candle, notional and the squared 1m log returns ending in it."""
    hours = reference_candles(trades, hour)
    for key in hours:
        hours[key] |= {"notional": Decimal(0), "squared": 0.0, "returns": 0}
    for t in trades:
        hours[(t.exchange, t.product_id, hour(t.event_time))]["notional"] += Decimal(t.price) * Decimal(
            t.size
        )
    for (exchange, product), series in by_product(reference_candles(trades, minute)).items():
        for (_, a), (start, b) in pairwise(series):
            r = math.log(float(b["close"]) / float(a["close"]))
            h = hours[(exchange, product, hour(start))]
            h["squared"] += r * r
            h["returns"] += 1
    return hours


def test_rolling_24h_equals_the_reference(gold_lakehouse, trades) -> None:
    hours = hourly_reference(trades)
    actual = gold_rows(
        gold_lakehouse.settings,
        "select exchange, product_id, hour_start as start, close, price_change_24h, high_24h, low_24h,"
        " volume_24h, notional_24h, trade_count_24h, volatility_24h, return_count_24h"
        " from lake.gold.rolling_24h",
    )
    assert actual.keys() == hours.keys()
    for (exchange, product, start), h in hours.items():
        window = sorted(
            (k[2], v)
            for k, v in hours.items()
            if k[:2] == (exchange, product) and start - timedelta(hours=24) < k[2] <= start
        )
        got = actual[(exchange, product, start)]
        first_open = window[0][1]["open"]
        assert got == {
            "close": h["close"],
            "price_change_24h": divide(h["close"] - first_open, first_open),
            "high_24h": max(v["high"] for _, v in window),
            "low_24h": min(v["low"] for _, v in window),
            "volume_24h": sum((v["volume"] for _, v in window), Decimal(0)),
            "notional_24h": sum((v["notional"] for _, v in window), Decimal(0)),
            "trade_count_24h": sum(v["trade_count"] for _, v in window),
            "volatility_24h": pytest.approx(math.sqrt(sum(v["squared"] for _, v in window)), rel=1e-9),
            "return_count_24h": sum(v["returns"] for _, v in window),
        }, (exchange, product, start)


def test_volume_heatmap_equals_the_reference(gold_lakehouse, trades) -> None:
    hours = hourly_reference(trades)
    actual = gold_rows(
        gold_lakehouse.settings,
        "select exchange, product_id, hour_start as start, hour_of_day, volume, notional, trade_count,"
        " notional_share_24h from lake.gold.volume_heatmap_1h",
    )
    assert actual.keys() == hours.keys()
    for (exchange, product, start), h in hours.items():
        day_notional = sum(
            (
                v["notional"]
                for k, v in hours.items()
                if k[:2] == (exchange, product) and start - timedelta(hours=24) < k[2] <= start
            ),
            Decimal(0),
        )
        assert actual[(exchange, product, start)] == {
            "hour_of_day": start.hour,
            "volume": h["volume"],
            "notional": h["notional"],
            "trade_count": h["trade_count"],
            "notional_share_24h": divide(h["notional"], day_notional),
        }
    assert {start.hour for _, _, start in hours} == {22, 23, 0, 1}  # across midnight


def test_pipeline_health_5m_equals_the_reference(gold_lakehouse, trades) -> None:
    newest = five(max(max(t.event_time for t in trades), max(t.ingest_time for t in trades)))
    expected = {}
    for product_key in {(t.exchange, t.product_id) for t in trades}:
        mine = [t for t in trades if (t.exchange, t.product_id) == product_key]
        bucket = min(five(min(t.event_time for t in mine)), five(min(t.ingest_time for t in mine)))
        while bucket <= newest:
            end = bucket + FIVE_MINUTES
            events = [t.event_time for t in mine if t.event_time < end]
            ingests = [t.ingest_time for t in mine if t.ingest_time < end]
            expected[(*product_key, bucket)] = {
                "bucket_end": end,
                "trade_count": sum(1 for t in mine if five(t.event_time) == bucket),
                "ingested_count": sum(1 for t in mine if five(t.ingest_time) == bucket),
                "seconds_since_last_trade": (end - max(events)).total_seconds() if events else None,
                "seconds_since_last_ingest": (end - max(ingests)).total_seconds() if ingests else None,
            }
            bucket = end
    actual = gold_rows(
        gold_lakehouse.settings,
        "select exchange, product_id, bucket_start as start, bucket_end, trade_count, ingested_count,"
        " seconds_since_last_trade, seconds_since_last_ingest from lake.gold.pipeline_health_5m",
    )
    assert actual.keys() == expected.keys()
    for key, want in expected.items():
        for column in ("seconds_since_last_trade", "seconds_since_last_ingest"):
            if want[column] is not None:  # DuckDB counts whole milliseconds
                want[column] = pytest.approx(want[column], abs=0.0011)
        assert actual[key] == want, key
    # the late batch arrives an hour after the rest: its empty buckets show the silence growing
    quiet = [actual[k]["seconds_since_last_ingest"] for k, w in expected.items() if w["ingested_count"] == 0]
    assert max(s for s in quiet if s is not None) >= 3000


def reference_alert_facts(trades: list[RawTrade]) -> dict[tuple, dict]:
    out = {}
    for key, series in by_product(reference_candles(trades, minute)).items():
        newest = series[-1][0]
        recent = [(s, c) for s, c in series if s > newest - timedelta(minutes=60)]
        buckets: dict[datetime, list[dict]] = defaultdict(list)
        for s, c in recent:
            buckets[five(s)].append(c)
        out[key] = {
            "newest_candle": newest,
            "max_abs_return_1m": max(abs(divide(c["close"] - c["open"], c["open"])) for _, c in recent),
            "max_abs_return_5m": max(
                abs(divide(b[-1]["close"] - b[0]["open"], b[0]["open"])) for b in buckets.values()
            ),
        }
    return out


def test_alert_facts_equal_the_reference(gold_lakehouse, trades) -> None:
    expected = reference_alert_facts(trades)
    con = connect(gold_lakehouse.settings)
    rows = con.execute(
        "select exchange, product_id, newest_candle, max_abs_return_1m, max_abs_return_5m, latency_p95_ms,"
        " latency_p99_ms from lake.gold.market_alert_facts"
    ).fetchall()
    worst = dict(
        ((e, p), (p95, p99))
        for e, p, p95, p99 in con.execute(
            "select l.exchange, l.product_id, max(l.latency_p95_ms), max(l.latency_p99_ms)"
            " from lake.gold.ingestion_latency_1m l join lake.gold.market_alert_facts f using (exchange, product_id)"
            " where l.candle_start > f.newest_candle - interval 60 minute group by 1, 2"
        ).fetchall()
    )
    con.close()
    assert {(e, p) for e, p, *_ in rows} == expected.keys()
    for e, p, newest, r1, r5, p95, p99 in rows:
        assert {"newest_candle": newest, "max_abs_return_1m": r1, "max_abs_return_5m": r5} == expected[(e, p)]
        assert (p95, p99) == worst[(e, p)] and p99 >= p95 > 0


def test_the_alert_facts_become_low_cardinality_gauges(gold_lakehouse, trades) -> None:
    """What gold_job pushes after a build: read back through `dbt show`, the path both targets use."""
    facts = alert_facts(gold_lakehouse.settings)
    expected = reference_alert_facts(trades)
    registry = CollectorRegistry()
    market_gauges(facts, registry)
    samples = {
        (
            s.name,
            s.labels["exchange"],
            s.labels["product"],
            s.labels.get("window") or s.labels.get("quantile") or s.labels.get("stat", ""),
        ): s.value
        for family in registry.collect()
        for s in family.samples
    }
    for (exchange, product), want in expected.items():
        assert samples[("lakehouse_gold_abs_return_max_ratio", exchange, product, "1m")] == pytest.approx(
            float(want["max_abs_return_1m"]), rel=1e-12
        )
        assert samples[("lakehouse_gold_abs_return_max_ratio", exchange, product, "5m")] == pytest.approx(
            float(want["max_abs_return_5m"]), rel=1e-12
        )
        assert (
            samples[("lakehouse_gold_newest_candle_timestamp_seconds", exchange, product, "")]
            == want["newest_candle"].timestamp()
        )
        assert (
            0
            < samples[("lakehouse_gold_ingest_latency_seconds", exchange, product, "0.95")]
            <= samples[("lakehouse_gold_ingest_latency_seconds", exchange, product, "0.99")]
        )
    labels = {tuple(sorted(s.labels)) for family in registry.collect() for s in family.samples}
    assert labels <= {
        ("exchange", "product"),
        ("exchange", "product", "window"),
        ("exchange", "product", "quantile"),
        ("exchange", "product", "stat"),
    }
    # the fixture's reference prices give every product both deviation gauges (max, sustained)
    assert all(samples[("lakehouse_gold_reference_deviation_bps", *key, "max")] > 0 for key in expected)
    assert len(samples) == 7 * len(expected)
