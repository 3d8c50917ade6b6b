"""The Coinbase parser against frames stored in Coinbase's exact formats (tests/fixtures/coinbase_frames)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from ingestion.coinbase_parser import (
    Control,
    ExchangeError,
    Heartbeat,
    Skipped,
    parse_frame,
    parse_rest_trade,
)
from ingestion.events import InvalidTrade, Trade

FRAMES = Path(__file__).resolve().parents[1] / "fixtures" / "coinbase_frames"
PRODUCTS = frozenset(("BTC-USD", "ETH-USD", "DOGE-USD"))
RECEIVED = datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC)


def frame(name: str) -> bytes:
    return (FRAMES / name).read_bytes().strip()


def parse(raw: bytes | str, source: str = "ws"):
    return parse_frame(raw, RECEIVED, source, PRODUCTS, 64 * 1024)


def test_match_becomes_a_trade_with_the_taker_side() -> None:
    trade = parse(frame("match.json"))
    assert isinstance(trade, Trade)
    assert (trade.exchange, trade.product_id, trade.trade_id, trade.sequence) == (
        "coinbase",
        "BTC-USD",
        10,
        50,
    )
    # Coinbase reports the maker's side: a resting sell order was hit by a taker who bought
    assert trade.side == "buy"
    assert trade.event_time == datetime(2014, 11, 7, 8, 19, 27, 28459, tzinfo=UTC)
    assert trade.receive_time == RECEIVED
    assert trade.source == "ws"
    assert trade.raw == frame("match.json").decode()


def test_maker_buy_is_a_taker_sell() -> None:
    trade = parse(frame("match_buy_maker.json"))
    assert isinstance(trade, Trade)
    assert trade.side == "sell"


def test_decimals_are_exact_as_sent() -> None:
    trade = parse(frame("last_match.json"))
    assert isinstance(trade, Trade)
    assert trade.price == Decimal("63451.99")
    assert trade.size == Decimal("0.00000001")
    wire = orjson.loads(trade.to_wire())
    assert (wire["price"], wire["size"]) == ("63451.99", "0.00000001")
    doge = parse(frame("match_buy_maker.json"))
    assert orjson.loads(doge.to_wire())["price"] == "0.13071"
    assert Trade.from_wire(doge.to_wire()) == doge


def test_last_match_is_a_trade() -> None:
    trade = parse(frame("last_match.json"))
    assert isinstance(trade, Trade)
    assert (trade.trade_id, trade.side) == (683195420, "buy")


def test_heartbeat_carries_the_last_trade_id() -> None:
    assert parse(frame("heartbeat.json")) == Heartbeat("BTC-USD", 20, 90)


def test_subscriptions_and_error_frames() -> None:
    sub = parse(frame("subscriptions.json"))
    assert isinstance(sub, Control) and sub.type == "subscriptions"
    assert parse(frame("error.json")) == ExchangeError(
        "Failed to subscribe", "BTC-XYZ is not a valid product"
    )


@pytest.mark.parametrize(
    ("name", "kind"),
    [("snapshot.json", "snapshot"), ("l2update.json", "l2update"), ("ticker.json", "ticker")],
)
def test_frames_of_channels_not_used_are_skipped_not_refused(name: str, kind: str) -> None:
    # a ticker carries trade_id/price/side/time like a match: it must not become a trade
    assert parse(frame(name)) == Skipped(kind)


def test_a_level2_and_ticker_subscription_is_a_control_frame() -> None:
    sub = parse(frame("subscriptions_level2_ticker.json"))
    assert isinstance(sub, Control)
    assert [c["name"] for c in sub.payload["channels"]] == ["level2", "ticker", "matches"]


def test_synthetic_frames_are_their_own_venue() -> None:
    trade = parse_frame(frame("match.json"), RECEIVED, "synthetic", PRODUCTS, 64 * 1024, "synthetic")
    assert (trade.exchange, trade.trade_id) == ("synthetic", 10)
    # the slow path (a frame the typed decoder refuses, e.g. a zoneless time) keeps the venue too
    slow = parse_frame(_match(time="2014-11-07T08:19:27.028459+00:00"), RECEIVED, "synthetic",
                       PRODUCTS, 64 * 1024, "synthetic")  # fmt: skip
    assert slow.exchange == "synthetic"


def test_source_is_kept() -> None:
    assert parse(frame("match.json"), "synthetic").source == "synthetic"
    assert parse(frame("match.json"), "replay").source == "replay"


def _match(**changes: object) -> bytes:
    obj = orjson.loads(frame("match.json"))
    obj.update(changes)
    return orjson.dumps({k: v for k, v in obj.items() if v is not ...})


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json at all", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"type": "tickers", "product_id": "BTC-USD"}', "unknown frame type 'tickers'"),
        (b'{"product_id": "BTC-USD", "price": "1"}', "unknown frame type None"),
        (_match(price=...), "match missing fields: price"),
        (_match(price="0"), "non-positive price"),
        (_match(size="-1.5"), "non-positive size"),
        (_match(price=400.23), "price must be a decimal string"),
        (_match(price="abc"), "price is not a decimal"),
        (_match(side="up"), "unknown side"),
        (_match(trade_id="10"), "trade_id must be an integer"),
        (_match(time="yesterday"), "time is not an ISO 8601 time"),
        (_match(product_id="BTC-XYZ"), "unknown product 'BTC-XYZ'"),
        (_match(product_id=["BTC-USD"]), "unknown product"),
        (_match(sequence="50"), "sequence must be an integer"),
        (
            b'{"type":"heartbeat","product_id":"BTC-USD","last_trade_id":"x"}',
            "last_trade_id must be an integer",
        ),
    ],
)
def test_bad_frames_raise_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidTrade, match=reason.replace("(", r"\(").replace("[", r"\[")):
        parse(raw)


def test_oversized_frames_are_refused_before_parsing() -> None:
    with pytest.raises(InvalidTrade, match="oversized frame"):
        parse_frame(b"x" * 2000, RECEIVED, "ws", PRODUCTS, 1024)


def test_rest_trades_are_backfill_with_taker_side_and_no_sequence() -> None:
    page = orjson.loads(frame("rest_trades.json"))
    trades = [parse_rest_trade(obj, "BTC-USD", RECEIVED) for obj in page]
    assert [t.trade_id for t in trades] == [76, 75, 74]
    assert [t.side for t in trades] == ["buy", "sell", "sell"]
    assert all(t.source == "backfill" and t.sequence is None for t in trades)
    assert trades[2].price == Decimal("10.00000000")
    assert orjson.loads(trades[2].raw) == page[2]
    with pytest.raises(InvalidTrade, match="missing fields: size"):
        parse_rest_trade({k: v for k, v in page[0].items() if k != "size"}, "BTC-USD", RECEIVED)
