"""The expectation suites, one per dataset in ``quality.datasets`` (pure: builds GE objects only).

Suites are built from expectation lists, so no GE data context is needed until they run.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from quality.datasets import SILVER_COLUMNS

KEY = ("exchange", "product_id", "trade_id")
CANDLE_KEY = ("exchange", "product_id", "candle_start")
CANDLE_COLUMNS = (
    "exchange", "product_id", "candle_start", "candle_end", "open", "high", "low", "close", "volume",
    "notional", "vwap", "trade_count", "buy_volume", "sell_volume",
)  # fmt: skip
# clock skew allowance: an exchange timestamp slightly after our own ingest time is not an error
MIN_LATENCY_MS = -5 * 60 * 1000


def silver_suite(products: tuple[str, ...]) -> gx.ExpectationSuite:
    name = "silver_trades"
    expectations: list = []
    expectations.append(gxe.ExpectTableColumnsToMatchSet(column_set=list(SILVER_COLUMNS), exact_match=True))
    expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(KEY)))
    for column in (*KEY, "price", "size", "side", "event_time", "ingest_time"):
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
    expectations.append(gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0, strict_min=True))
    expectations.append(gxe.ExpectColumnValuesToBeBetween(column="size", min_value=0, strict_min=True))
    expectations.append(gxe.ExpectColumnValuesToBeInSet(column="side", value_set=["buy", "sell"]))
    expectations.append(gxe.ExpectColumnValuesToBeInSet(column="product_id", value_set=list(products)))
    expectations.append(
        gxe.ExpectColumnValuesToBeBetween(column="ingest_latency_ms", min_value=MIN_LATENCY_MS)
    )
    return gx.ExpectationSuite(name=name, expectations=expectations)


def candle_suite(name: str) -> gx.ExpectationSuite:
    """Schema, key, OHLC consistency and ranges of a candle table (gold ohlcv_1m / ohlcv_1h)."""
    expectations: list = []
    expectations.append(gxe.ExpectTableColumnsToMatchSet(column_set=list(CANDLE_COLUMNS), exact_match=False))
    expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(CANDLE_KEY)))
    for column in (*CANDLE_KEY, "open", "high", "low", "close", "volume", "vwap"):
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
    # high >= max(open, close, vwap) and low <= min(open, close, vwap)
    for a, b in (
        ("high", "open"),
        ("high", "close"),
        ("high", "vwap"),
        ("open", "low"),
        ("close", "low"),
        ("vwap", "low"),
    ):
        expectations.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True)
        )
    for column in ("volume", "buy_volume", "sell_volume"):
        expectations.append(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0))
    expectations.append(gxe.ExpectColumnValuesToBeBetween(column="low", min_value=0, strict_min=True))
    expectations.append(gxe.ExpectColumnValuesToBeBetween(column="trade_count", min_value=1))
    return gx.ExpectationSuite(name=name, expectations=expectations)


DEVIATION_KEY = ("exchange", "product_id", "candle_start", "versus")


def deviation_suite(max_deviation_bps: float) -> gx.ExpectationSuite:
    """gold.price_deviation_1m: key, positive prices, known kinds, and every deviation within
    ``max_deviation_bps`` (``coingecko.max_deviation_bps``): far beyond any market's spread between
    venues, so a breach means a wrong coin:currency -> product mapping or a bad print, not a move."""
    expectations: list = []
    expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(DEVIATION_KEY)))
    for column in (*DEVIATION_KEY, "versus_kind", "vwap", "versus_price", "versus_time", "deviation_bps"):
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
    expectations.append(
        gxe.ExpectColumnValuesToBeInSet(column="versus_kind", value_set=["reference", "venue"])
    )
    for column in ("vwap", "versus_price"):
        expectations.append(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, strict_min=True))
    expectations.append(
        gxe.ExpectColumnValuesToBeBetween(
            column="deviation_bps", min_value=-max_deviation_bps, max_value=max_deviation_bps
        )
    )
    return gx.ExpectationSuite(name="gold_price_deviation_1m", expectations=expectations)


def reconciliation_suite(max_silver_lag_s: int) -> gx.ExpectationSuite:
    """Row counts vs bronze, gold vs silver, and freshness of each stage behind the one before."""
    name = "reconciliation"
    expectations: list = []
    expectations.append(gxe.ExpectTableRowCountToBeBetween(min_value=1, max_value=1))
    for column in ("lost_rows", "gold_count_mismatches"):
        expectations.append(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=0))
    expectations.append(
        gxe.ExpectColumnValuesToBeBetween(column="silver_lag_seconds", max_value=max_silver_lag_s)
    )
    expectations.append(gxe.ExpectColumnValuesToBeBetween(column="gold_lag_seconds", max_value=0))
    return gx.ExpectationSuite(name=name, expectations=expectations)
