"""The quality suites on in-memory frames: a clean window passes, each kind of defect is named."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from prometheus_client import generate_latest

from infrastructure.settings import Settings
from quality.checks import metrics_registry, suites_for, validate

T0 = pd.Timestamp("2026-03-01 22:00", tz="UTC")


def candles(**changes) -> pd.DataFrame:
    row = {
        "exchange": "coinbase", "product_id": "BTC-USD", "candle_start": T0, "candle_end": T0 + pd.Timedelta(minutes=1),
        "open": 10.0, "high": 12.0, "low": 9.0, "close": 11.0, "volume": 2.0, "notional": 21.0, "vwap": 10.5,
        "trade_count": 2, "buy_volume": 1.0, "sell_volume": 1.0,
    }  # fmt: skip
    second = {**row, "candle_start": T0 + pd.Timedelta(minutes=1)}
    return pd.DataFrame([{**row, **changes}, second])


def reconciliation(**changes) -> pd.DataFrame:
    row = {
        "bronze_rows": 10, "silver_rows": 8, "rejected_rows": 1, "duplicate_rows": 1, "lost_rows": 0,
        "gold_count_mismatches": 0, "silver_lag_seconds": 0, "gold_lag_seconds": 0,
    }  # fmt: skip
    return pd.DataFrame([{**row, **changes}])


@pytest.fixture(scope="module")
def suites():
    s = suites_for(Settings(_env_file=None), max_silver_lag_s=3600)
    return {"gold_ohlcv_1m": s["gold_ohlcv_1m"], "reconciliation": s["reconciliation"]}


def test_consistent_candles_and_counts_pass(suites) -> None:
    results, raw = validate({"gold_ohlcv_1m": candles(), "reconciliation": reconciliation()}, suites)
    assert [(r.suite, r.success, r.failed) for r in results] == [
        ("gold_ohlcv_1m", True, 0),
        ("reconciliation", True, 0),
    ]
    assert results[0].evaluated >= 20
    assert raw["gold_ohlcv_1m"]["success"] is True


def test_each_defect_fails_its_suite_with_a_readable_reason(suites) -> None:
    bad = {
        "gold_ohlcv_1m": candles(high=10.5, volume=-1.0),  # high below close; negative volume
        "reconciliation": reconciliation(lost_rows=2, gold_lag_seconds=120),
    }
    results, _ = validate(bad, suites)
    by_suite = {r.suite: r for r in results}
    candle_failures = "\n".join(by_suite["gold_ohlcv_1m"].failures)
    assert not by_suite["gold_ohlcv_1m"].success
    assert "column_A=high, column_B=close" in candle_failures
    assert "column=volume" in candle_failures
    recon = by_suite["reconciliation"]
    assert (recon.success, recon.failed) == (False, 2)
    assert any("lost_rows" in f for f in recon.failures)
    assert any("gold_lag_seconds" in f for f in recon.failures)


def test_metrics_are_per_suite_gauges() -> None:
    from quality.checks import SuiteResult

    registry = metrics_registry(
        [SuiteResult("silver_trades", False, 5, 15, 2, ["x"])], datetime(2026, 3, 1, 23, tzinfo=UTC)
    )
    text = generate_latest(registry).decode()
    assert 'lakehouse_quality_suite_success{suite="silver_trades"} 0.0' in text
    assert 'lakehouse_quality_expectations_failed{suite="silver_trades"} 2.0' in text
    assert 'lakehouse_quality_expectations_evaluated{suite="silver_trades"} 15.0' in text
    end = datetime(2026, 3, 1, 23, tzinfo=UTC).timestamp()
    assert registry.get_sample_value("lakehouse_quality_window_end_timestamp_seconds") == end


def deviations(**changes) -> pd.DataFrame:
    row = {
        "exchange": "binance", "product_id": "BTC-USDT", "candle_start": T0, "candle_end": T0 + pd.Timedelta(minutes=1),
        "versus_kind": "reference", "versus": "coingecko", "vwap": 65010.0, "versus_price": 65000.0,
        "versus_time": T0 + pd.Timedelta(seconds=45), "deviation_bps": 1.538461538461538462, "trade_count": 3,
        "max_ingest_time": T0 + pd.Timedelta(minutes=5),
    }  # fmt: skip
    venue = {
        **row,
        "versus_kind": "venue",
        "versus": "coinbase",
        "versus_price": 65012.0,
        "deviation_bps": -0.3076,
    }
    return pd.DataFrame([{**row, **changes}, venue])


def test_the_deviation_suite_passes_small_deviations_and_names_a_wrong_mapping() -> None:
    suite = {"gold_price_deviation_1m": suites_for(Settings(_env_file=None), 3600)["gold_price_deviation_1m"]}
    (ok,), _ = validate({"gold_price_deviation_1m": deviations()}, suite)
    assert ok.success and ok.evaluated >= 10
    # BTC priced against ETH's reference: ~ +180,000 bps, far beyond coingecko.max_deviation_bps
    (bad,), _ = validate(
        {
            "gold_price_deviation_1m": deviations(
                versus_price=3400.0, deviation_bps=181205.88, versus_kind="spot"
            )
        },
        suite,
    )
    failures = "\n".join(bad.failures)
    assert not bad.success and bad.failed == 2
    assert "deviation_bps" in failures and "versus_kind" in failures
