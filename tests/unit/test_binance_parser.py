"""The Binance parser against frames stored in Binance's exact formats (tests/fixtures/binance_frames)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from ingestion.binance_parser import (
    AGGREGATE_ID_BASE,
    is_aggregate,
    parse_frame,
    parse_rest_trade,
    stream_names,
    symbol_products,
)
from ingestion.events import InvalidTrade, Trade
from ingestion.frames import Control, ExchangeError, Skipped

FRAMES = Path(__file__).resolve().parents[1] / "fixtures" / "binance_frames"
SYMBOLS = {"BTCUSDT": "BTC-USDT", "ETHUSDT": "ETH-USDT"}
RECEIVED = datetime(2025, 12, 2, 0, 0, 1, tzinfo=UTC)


def frame(name: str) -> bytes:
    return (FRAMES / name).read_bytes().strip()


def parse(raw: bytes | str, source: str = "ws"):
    return parse_frame(raw, RECEIVED, source, SYMBOLS, 64 * 1024)


def test_combined_stream_trade_becomes_a_trade_with_the_taker_side() -> None:
    trade = parse(frame("trade.json"))
    assert isinstance(trade, Trade)
    assert (trade.exchange, trade.product_id, trade.trade_id, trade.sequence) == (
        "binance", "BTC-USDT", 5428790000, None,
    )  # fmt: skip
    # "m": true -- the buyer was the maker, so the aggressor sold
    assert trade.side == "sell"
    # exact decimals as sent, trailing zeros kept
    assert (str(trade.price), str(trade.size)) == ("91234.56000000", "0.00052000")
    # the trade time T (...121), not the event time E (...123)
    assert trade.event_time == datetime(2025, 12, 2, 0, 0, 0, 121_000, tzinfo=UTC)
    assert trade.raw == frame("trade.json").decode()
    assert Trade.from_wire(trade.to_wire()) == trade


def test_buyer_taker_is_a_buy() -> None:
    trade = parse(frame("trade_buyer_taker.json"))
    assert isinstance(trade, Trade)
    assert (trade.product_id, trade.side, trade.size) == ("ETH-USDT", "buy", Decimal("1.25000000"))


def test_raw_stream_payload_is_the_same_trade() -> None:
    wrapped, raw = parse(frame("trade.json")), parse(frame("trade_raw.json"))
    assert isinstance(raw, Trade) and isinstance(wrapped, Trade)
    assert (raw.trade_id, raw.price, raw.size, raw.side, raw.event_time) == (
        wrapped.trade_id, wrapped.price, wrapped.size, wrapped.side, wrapped.event_time,
    )  # fmt: skip


def test_aggregate_trade_gets_its_own_id_space() -> None:
    agg = parse(frame("agg_trade.json"))
    assert isinstance(agg, Trade)
    assert agg.trade_id == AGGREGATE_ID_BASE + 3672451234 and is_aggregate(agg.trade_id)
    assert (agg.product_id, agg.side, str(agg.size)) == ("BTC-USDT", "sell", "0.01200000")
    # an aggregate whose id equals a trade id never yields the same key
    trade_frame = frame("trade.json").replace(b"5428790000", b"3672451234")
    trade = parse(trade_frame)
    assert isinstance(trade, Trade) and not is_aggregate(trade.trade_id)
    assert trade.trade_id != agg.trade_id
    assert Trade.from_wire(agg.to_wire()).trade_id == agg.trade_id  # fits the int64 column


def test_slow_path_agrees_with_the_fast_path() -> None:
    # the general path (what a frame the typed decoder refuses takes) builds the same trade
    from ingestion.binance_parser import _trade

    obj = orjson.loads(frame("trade.json"))
    slow = _trade(obj["data"], "trade", obj["stream"], RECEIVED, "ws", SYMBOLS, "x", "binance")
    fast = parse(frame("trade.json"))
    assert isinstance(fast, Trade)
    assert (slow.trade_id, slow.price, slow.size, slow.side, slow.event_time) == (
        fast.trade_id, fast.price, fast.size, fast.side, fast.event_time,
    )  # fmt: skip
    # a wrapper with its keys in another order is still the same trade
    swapped = parse(orjson.dumps({"data": obj["data"], "stream": obj["stream"]}))
    assert isinstance(swapped, Trade) and swapped.trade_id == fast.trade_id


def test_control_error_and_skipped_frames() -> None:
    shutdown = parse(frame("server_shutdown.json"))
    assert isinstance(shutdown, Control) and shutdown.type == "serverShutdown"
    result = parse(frame("subscribe_result.json"))
    assert isinstance(result, Control) and result.type == "result"
    error = parse(frame("error.json"))
    assert isinstance(error, ExchangeError) and error.reason == "code 2"
    assert error.message.startswith("Invalid request")
    assert parse(frame("depth_update.json")) == Skipped("depthUpdate")


BAD = [
    (b"not json", "not JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"stream": "btcusdt@trade", "data": [1]}', "is not a JSON object"),
    (b'{"e": "no_such_event"}', "unknown event type 'no_such_event'"),
    (b'{"e": "trade", "s": "BTCUSDT"}', "trade missing fields: t, p, q, T, m"),
]


@pytest.mark.parametrize(("raw", "reason"), BAD)
def test_garbage_is_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidTrade, match=reason):
        parse(raw)


def _mutated(**changes: object) -> bytes:
    obj = orjson.loads(frame("trade.json"))
    obj["data"].update(changes)
    return orjson.dumps(obj)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_mutated(p="0.00000000"), "non-positive price"),
        (_mutated(q="-1"), "non-positive size"),
        (_mutated(p=91234.56), "price must be a decimal string, got float"),
        (_mutated(q="abc"), "quantity is not a decimal"),
        (_mutated(s="XRPUSDT"), "unknown symbol 'XRPUSDT'"),
        (_mutated(m="yes"), "m must be true or false"),
        (_mutated(t=True), "t must be a trade id"),
        (_mutated(t=-5), "t must be a trade id"),
        (_mutated(T="1764633600121"), "T must be integer milliseconds"),
        (frame("trade.json").replace(b'"btcusdt@trade"', b'"ethusdt@trade"'), "carries a BTCUSDT trade"),
    ],
)
def test_bad_trades_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidTrade, match=reason):
        parse(raw)


def test_oversized_frame_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidTrade, match="oversized frame"):
        parse_frame(frame("trade.json"), RECEIVED, "ws", SYMBOLS, 64)


def test_product_ids_come_from_the_symbol_metadata() -> None:
    info = orjson.loads(frame("exchange_info.json"))
    assert symbol_products(info, ["btcusdt", "ETHUSDT"]) == SYMBOLS
    # the metadata decides, not the text: a symbol whose split a string could not guess
    info["symbols"].append({"symbol": "1000SATSUSDT", "baseAsset": "1000SATS", "quoteAsset": "USDT"})
    assert symbol_products(info, ["1000SATSUSDT"]) == {"1000SATSUSDT": "1000SATS-USDT"}
    with pytest.raises(ValueError, match="does not list symbol"):
        symbol_products(info, ["BTCUSDT", "NOPEUSDT"])
    with pytest.raises(ValueError, match="no symbols list"):
        symbol_products(orjson.loads(frame("rest_error_invalid_symbol.json")), ["BTCUSDT"])


def test_rest_trades_become_backfill_trades() -> None:
    first, second = (
        parse_rest_trade(o, "BTC-USDT", RECEIVED) for o in orjson.loads(frame("rest_historical_trades.json"))
    )
    assert (first.trade_id, first.side, str(first.price), first.source) == (
        5428790001,
        "buy",
        "91234.57000000",
        "backfill",
    )
    assert (second.side, str(second.size)) == ("sell", "0.00010000")
    assert second.event_time == datetime(2025, 12, 2, 0, 0, 0, 302_000, tzinfo=UTC)
    with pytest.raises(InvalidTrade, match="REST trade missing fields: isBuyerMaker"):
        parse_rest_trade({"id": 1, "price": "1", "qty": "1", "time": 1}, "BTC-USDT", RECEIVED)


def test_stream_names_are_lower_case() -> None:
    assert stream_names(["BTCUSDT", "ETHUSDT"]) == ["btcusdt@trade", "ethusdt@trade"]
    assert stream_names(["BTCUSDT"], "aggTrade") == ["btcusdt@aggTrade"]


def test_settings_refuse_a_rotation_that_cannot_beat_the_lifetime_and_too_many_streams() -> None:
    from pydantic import ValidationError

    from infrastructure.settings import BinanceSettings

    assert BinanceSettings().rotate_after_s() == 86_400 - 600
    assert BinanceSettings(symbols="btcusdt, ethusdt").symbols == ("BTCUSDT", "ETHUSDT")
    with pytest.raises(ValidationError, match="handover_s < rotate_margin_s < connection_lifetime_s"):
        BinanceSettings(connection_lifetime_s=60, rotate_margin_s=120)
    with pytest.raises(ValidationError, match="at most 1024"):
        BinanceSettings(symbols=tuple(f"S{i}USDT" for i in range(1025)))


def test_gaps_name_their_exchange() -> None:
    from ingestion.continuity import Continuity

    tracker = Continuity(exchange="binance")
    assert tracker.observe_trade("BTC-USDT", 10) is None
    gap = tracker.observe_trade("BTC-USDT", 14)
    assert gap is not None and (gap.exchange, gap.after_id, gap.before_id, gap.missing) == (
        "binance",
        10,
        14,
        3,
    )


def test_retry_after_and_error_messages() -> None:
    from ingestion.binance_rest import _message
    from ingestion.venue_io import retry_after_s as _retry_after

    assert (_retry_after("7"), _retry_after(None), _retry_after("soon")) == (7.0, 1.0, 1.0)
    assert _message(frame("rest_error_invalid_symbol.json")) == "Invalid symbol. (code -1121)"
    assert _message(b"<html>") == "b'<html>'"


def test_rest_aggregate_trades_land_in_the_aggregate_range() -> None:
    from ingestion.binance_parser import parse_rest_agg_trade

    (obj,) = orjson.loads(frame("rest_agg_trades.json"))
    trade = parse_rest_agg_trade(obj, "BTC-USDT", RECEIVED)
    assert (trade.trade_id, trade.side, trade.source) == (AGGREGATE_ID_BASE + 3672451235, "buy", "backfill")
    with pytest.raises(InvalidTrade, match="REST aggregate trade missing fields: m"):
        parse_rest_agg_trade({k: v for k, v in obj.items() if k != "m"}, "BTC-USDT", RECEIVED)


def test_trade_time_is_exact_to_the_millisecond() -> None:
    import random
    from datetime import timedelta

    from ingestion.binance_parser import EPOCH, FLOAT_EXACT_MS, trade_time

    rng = random.Random(20261201)
    samples = [rng.randrange(FLOAT_EXACT_MS) for _ in range(100_000)] + [0, 1, 999, FLOAT_EXACT_MS - 1]
    samples += range(1_764_633_600_000, 1_764_633_620_000)  # every millisecond of 20 s of today
    assert all(trade_time(ms) == EPOCH + timedelta(milliseconds=ms) for ms in samples)
    assert trade_time(FLOAT_EXACT_MS + 7) == EPOCH + timedelta(milliseconds=FLOAT_EXACT_MS + 7)
    assert trade_time(1764633600121).tzinfo is UTC  # the wire encoder's fast path needs UTC itself
