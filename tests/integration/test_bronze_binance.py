"""Binance trades land in bronze through the existing writer unchanged: every field as the Binance
parser built it (exact decimal strings, taker side, trade time, aggregate ids in their own range,
the raw frame), keyed and partitioned as any venue's."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import orjson

from infrastructure.catalog import load_catalog
from infrastructure.tables import BRONZE_TRADES
from ingestion.binance_parser import AGGREGATE_ID_BASE, parse_frame, parse_rest_trade
from ingestion.events import Trade, format_decimal
from ingestion.sources import synthetic_binance_frames, synthetic_binance_symbols
from orchestration.local_stack import produce
from tests.fixtures.bronze import BronzeEnv

FRAMES = Path(__file__).resolve().parents[1] / "fixtures" / "binance_frames"
SYMBOLS = {"BTCUSDT": "BTC-USDT", "ETHUSDT": "ETH-USDT"}


def binance_trades() -> list[Trade]:
    received = datetime.now(UTC)
    trades = [
        parse_frame((FRAMES / name).read_bytes().strip(), received, "ws", SYMBOLS, 65536)
        for name in ("trade.json", "trade_buyer_taker.json", "agg_trade.json")
    ]
    rest = orjson.loads((FRAMES / "rest_historical_trades.json").read_bytes())
    trades += [parse_rest_trade(obj, "BTC-USDT", received) for obj in rest]
    frames = synthetic_binance_frames(synthetic_binance_symbols(("BTCUSDT", "SOLUSDT")), 3, received, 1000.0)
    trades += [
        parse_frame(f, received, "synthetic", synthetic_binance_symbols(("BTCUSDT", "SOLUSDT")), 65536,
                    "synthetic-binance")
        for _, f in itertools.islice(frames, 200)
    ]  # fmt: skip
    assert all(isinstance(t, Trade) for t in trades)
    return trades  # type: ignore[return-value]


def test_binance_trades_land_in_bronze_unchanged(bronze_env: BronzeEnv) -> None:
    env = bronze_env
    trades = binance_trades()
    produce(env.settings, ((t.key, t.to_wire()) for t in trades))
    proc = env.writer("--no-metrics", "--idle-exit", "8")
    assert proc.wait(timeout=180) == 0

    table = load_catalog(env.settings).load_table(BRONZE_TRADES.identifier)
    rows = table.scan(row_filter=f"kafka_topic == '{env.settings.kafka.trades_topic}'").to_arrow().to_pylist()
    assert len(rows) == len(trades)
    by_key = {(r["exchange"], r["product_id"], r["trade_id"]): r for r in rows}
    assert len(by_key) == len(trades)  # an aggregate never shares a key with a trade
    for t in trades:
        row = by_key[(t.exchange, t.product_id, t.trade_id)]
        assert (row["price"], row["size"]) == (format_decimal(t.price), format_decimal(t.size))
        assert (row["side"], row["source"], row["sequence"], row["raw"]) == (t.side, t.source, None, t.raw)
        assert (row["event_time"], row["receive_time"]) == (t.event_time, t.receive_time)
    fixture = by_key[("binance", "BTC-USDT", 5428790000)]
    assert (fixture["price"], fixture["size"], fixture["side"]) == ("91234.56000000", "0.00052000", "sell")
    assert ("binance", "BTC-USDT", AGGREGATE_ID_BASE + 3672451234) in by_key
    assert {r["exchange"] for r in rows} == {"binance", "synthetic-binance"}
