"""Three venues the real way: a fake Coinbase, a fake Binance and a fake CoinGecko (local servers in
their real formats) -> ``ingest`` per venue -> Kafka -> the bronze writer per stream -> silver
(trades and reference prices) -> gold. Gold's candles of each venue equal a ``Decimal`` computation
over what the fakes sent, and ``price_deviation_1m`` has exactly one reference row per venue and
minute, equal to the same computation against the reference price the fake served last at or
before the minute's end."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from infrastructure import services
from infrastructure.bootstrap import ensure_tables, ensure_topics
from infrastructure.catalog import load_catalog
from infrastructure.times import Window
from ingestion.runner import RunOptions
from processing.duckdb_engine import connect
from processing.gold import run_gold
from processing.silver.reference import run_reference_silver
from processing.silver.run import run_silver
from tests.fixtures.binance import FakeBinance
from tests.fixtures.coinbase import FakeCoinbase
from tests.fixtures.coingecko import FakeCoinGecko
from tests.fixtures.ingest import IngestThread
from tests.fixtures.services import Broker, child_environment, launch_seaweedfs, settings_for
from tests.integration.test_gold import divide

MAX_TRADING_S = 75.0  # until the trades span two minutes (at most a minute and a bit)
TRADE_EVERY_S = 0.25


@pytest.fixture
def fakes():
    coinbase, binance, coingecko = (
        FakeCoinbase(("BTC-USD",)),
        FakeBinance(("BTCUSDT",)),
        FakeCoinGecko(live=True),
    )
    coingecko.set_price("bitcoin", "usd", "100.00")
    coingecko.set_price("bitcoin", "usdt", "91000.00")
    for fake in (coinbase, binance, coingecko):
        fake.start()
    yield coinbase, binance, coingecko
    for fake in (coinbase, binance, coingecko):
        fake.stop()


def minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def expected_candles(trades: list[tuple]) -> dict[tuple, dict]:
    """(exchange, product, minute) -> vwap, volume, count, open, close from (exchange, product, id, price, size, time)."""
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for exchange, product, trade_id, price, size, when in trades:
        groups[(exchange, product, minute(when))].append((when, trade_id, price, size))
    candles = {}
    for key, rows in groups.items():
        rows.sort()
        volume = sum(r[3] for r in rows)
        candles[key] = {
            "open": rows[0][2], "close": rows[-1][2], "volume": volume, "trade_count": len(rows),
            "vwap": divide(sum(r[2] * r[3] for r in rows), volume),
        }  # fmt: skip
    return candles


def test_three_venues_to_gold(broker: Broker, fakes, tmp_path: Path) -> None:
    coinbase, binance, coingecko = fakes
    seaweedfs = launch_seaweedfs(tmp_path / "seaweedfs")  # gold of its own: no other test's silver
    try:
        tag = uuid.uuid4().hex[:8]
        settings = settings_for(
            broker, seaweedfs, data_dir=tmp_path / "data",
            products=["BTC-USD"],
            kafka={"trades_topic": f"trades-{tag}", "dlq_topic": f"dlq-{tag}", "reference_topic": f"ref-{tag}",
                   "partitions": 2},
            coinbase={"ws_url": coinbase.ws_url, "rest_url": coinbase.rest_url, "heartbeat_timeout_s": 1.5,
                      "backoff_initial_s": 0.05, "backoff_max_s": 0.5},
            binance={"ws_url": binance.ws_url, "rest_url": binance.rest_url, "symbols": "BTCUSDT",
                     "backoff_initial_s": 0.05, "backoff_max_s": 0.5, "ping_interval_s": 0.5},
            coingecko={"base_url": coingecko.base_url, "ids": "bitcoin", "vs_currencies": "usd,usdt",
                       "products": "bitcoin:usd=BTC-USD,bitcoin:usdt=BTC-USDT", "poll_interval_s": 1.0,
                       "rate_limit_per_minute": 6000.0},
            bronze={"consumer_group": f"bronze-{tag}", "flush_seconds": 1.0},
        )  # fmt: skip
        # silver validates products against settings.products: the Binance product too
        settings = settings.model_copy(update={"products": ("BTC-USD", "BTC-USDT")})
        ensure_topics(settings.kafka)
        ensure_tables(load_catalog(settings))
        window_start = datetime.now(UTC) - timedelta(seconds=1)

        cb_settings = settings.model_copy(update={"products": ("BTC-USD",)})  # what the fake Coinbase lists
        ingests = [
            IngestThread(cb_settings, RunOptions(source="coinbase", serve_metrics=False)).start(),
            IngestThread(settings, RunOptions(source="binance", serve_metrics=False)).start(),
            IngestThread(settings, RunOptions(source="coingecko", serve_metrics=False)).start(),
        ]
        coinbase.wait_for_subscriptions(1, timeout_s=60)
        binance.wait_for_connections(1, timeout_s=60)
        began = datetime.now(UTC)
        until = minute(began) + timedelta(minutes=1, seconds=3)  # trades in two minutes at least
        deadline = time.monotonic() + MAX_TRADING_S
        changed = False
        while datetime.now(UTC) < until and time.monotonic() < deadline:
            coinbase.trade("BTC-USD")
            binance.trade("BTCUSDT")
            if not changed and datetime.now(UTC) >= minute(began) + timedelta(seconds=50):
                coingecko.set_price("bitcoin", "usd", "100.25")  # the reference moves once
                changed = True
            time.sleep(TRADE_EVERY_S)
        time.sleep(1.5)  # the last trades through the feeds; a poll after them
        summaries = [ingest.stop(60) for ingest in reversed(ingests)]
        assert all(s.unsent == 0 and s.failed == 0 for s in summaries), [s.line() for s in summaries]
        assert summaries[0].reference is not None and summaries[0].reference.refused == 0

        env = child_environment(settings)
        for stream in ("trades", "reference_prices"):
            done = subprocess.run(
                [services.venv_bin("lakehouse"), "bronze", "--stream", stream, "--idle-exit", "5", "--no-metrics"],
                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
        window = Window(window_start, datetime.now(UTC) + timedelta(seconds=1))
        refined = run_silver(settings, window.start, window.end)
        assert refined.rejected == 0
        reference = run_reference_silver(settings, window)
        assert reference.rejected == 0 and reference.inserted == 2 * len({t for t, _ in coingecko.served})
        gold = run_gold(settings)
        assert gold.success, gold.summary()

        trades = [
            ("coinbase", "BTC-USD", t["trade_id"], Decimal(t["price"]), Decimal(t["size"]),
             datetime.fromisoformat(t["time"]))
            for t in coinbase.ledger["BTC-USD"]
        ] + [
            ("binance", "BTC-USDT", t["t"], Decimal(t["p"]), Decimal(t["q"]),
             datetime.fromtimestamp(t["T"] / 1000, UTC))
            for t in binance.ledger["BTCUSDT"]
        ]  # fmt: skip
        want = expected_candles(trades)
        assert len({k[2] for k in want}) >= 2  # at least two minutes
        con = connect(settings)
        try:
            candles = con.execute(
                "select exchange, product_id, candle_start, open, close, volume, vwap, trade_count from lake.gold.ohlcv_1m"
            ).fetchall()
            deviations = con.execute(
                "select exchange, product_id, candle_start, versus_kind, versus, vwap, versus_price, versus_time,"
                " deviation_bps from lake.gold.price_deviation_1m"
            ).fetchall()
        finally:
            con.close()
        got = {
            (e, p, m): {"open": o, "close": c, "volume": v, "vwap": w, "trade_count": n}
            for e, p, m, o, c, v, w, n in candles
        }
        assert got == want

        by_product = {"BTC-USD": ("bitcoin", "usd"), "BTC-USDT": ("bitcoin", "usdt")}
        expected_rows = {}
        for (exchange, product, start), candle in want.items():
            end = start + timedelta(minutes=1)
            usable = [s for s in coingecko.served if datetime.fromtimestamp(s[0], UTC) <= end]
            second = max(s[0] for s in usable)
            # two answers in one second are one key: silver keeps the first one published
            prices = next(p for t, p in usable if t == second)
            ref = Decimal(prices[by_product[product]])
            expected_rows[(exchange, product, start)] = (
                "reference", "coingecko", candle["vwap"], ref, datetime.fromtimestamp(second, UTC),
                divide((candle["vwap"] - ref) * 10000, ref),
            )  # fmt: skip
        got_rows = {(e, p, m): (k, v, w, vp, vt, d) for e, p, m, k, v, w, vp, vt, d in deviations}
        assert (
            got_rows == expected_rows
        )  # one reference row per venue and minute; no venue pair (other products)
    finally:
        seaweedfs.stop()
