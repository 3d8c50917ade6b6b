"""The normalized trade event: exact decimals, UTC times, wire round-trip and refusals with reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from ingestion.events import InvalidTrade, Trade

EVENT_TIME = datetime(2014, 11, 7, 8, 19, 27, 28459, tzinfo=UTC)


def make_trade(**changes: object) -> Trade:
    values: dict = {
        "exchange": "coinbase",
        "product_id": "BTC-USD",
        "trade_id": 10,
        "price": Decimal("400.23000000"),
        "size": Decimal("0.00000001"),
        "side": "buy",
        "event_time": EVENT_TIME,
        "receive_time": datetime(2014, 11, 7, 8, 19, 27, 101002, tzinfo=UTC),
        "sequence": 50,
        "source": "ws",
        "raw": '{"type":"match"}',
    }
    values.update(changes)
    return Trade(**values)


def test_wire_round_trip_is_exact() -> None:
    trade = make_trade()
    wire = trade.to_wire()
    decoded = orjson.loads(wire)
    # decimals travel as the exchange's strings, trailing zeros and all; never as JSON numbers
    assert decoded["price"] == "400.23000000"
    assert decoded["size"] == "0.00000001"
    assert decoded["event_time"] == "2014-11-07T08:19:27.028459Z"
    assert Trade.from_wire(wire) == trade


def test_tiny_and_exponent_decimals_keep_plain_notation() -> None:
    for text in ("0.00000001", "0.000000010", "12345678901234567890.123456789012345678", "100"):
        trade = make_trade(size=Decimal(text))
        assert orjson.loads(trade.to_wire())["size"] == text
    assert orjson.loads(make_trade(price=Decimal("1E+2")).to_wire())["price"] == "100"


def test_trades_are_immutable() -> None:
    with pytest.raises(AttributeError):
        make_trade().price = Decimal(1)  # type: ignore[misc]


def test_key_keeps_a_product_in_one_partition() -> None:
    assert make_trade().key == b"coinbase:BTC-USD"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"price": Decimal(0)}, "non-positive price"),
        ({"size": Decimal("-1")}, "non-positive size"),
        ({"price": Decimal("NaN")}, "price NaN is not a finite number"),
        ({"size": Decimal("Infinity")}, "size Infinity is not a finite number"),
        ({"side": "up"}, "unknown side"),
        ({"source": "fax"}, "unknown source"),
        ({"event_time": datetime(2014, 1, 1)}, "timezone-aware"),
    ],
)
def test_invalid_values_are_refused_with_a_reason(change: dict, reason: str) -> None:
    with pytest.raises(InvalidTrade, match=reason):
        make_trade(**change)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: b"{not json", "not JSON"),
        (lambda d: b"[1,2]", "expected a JSON object"),
        (lambda d: orjson.dumps({k: v for k, v in d.items() if k != "price"}), "missing fields: price"),
        (lambda d: orjson.dumps({**d, "price": 400.23}), "price must be a decimal string"),
        (lambda d: orjson.dumps({**d, "size": "abc"}), "size is not a decimal"),
        (lambda d: orjson.dumps({**d, "trade_id": True}), "trade_id must be an integer"),
        (lambda d: orjson.dumps({**d, "event_time": "2014-11-07T08:19:27"}), "event_time has no timezone"),
    ],
)
def test_bad_wire_messages_name_the_problem(mutate, reason: str) -> None:
    good = orjson.loads(make_trade().to_wire())
    with pytest.raises(InvalidTrade, match=reason):
        Trade.from_wire(mutate(good))


def test_format_time_is_utc_microseconds_with_z() -> None:
    from datetime import timedelta, timezone

    from ingestion.events import format_time

    for value in (
        datetime(2014, 11, 7, 8, 19, 27, 28459, tzinfo=UTC),
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
    ):
        assert format_time(value) == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_wire_times_always_have_microseconds_and_z() -> None:
    from datetime import timedelta, timezone

    base = Trade.from_wire(
        orjson.dumps(
            {"exchange": "coinbase", "product_id": "BTC-USD", "trade_id": 1, "price": "1", "size": "1",
             "side": "buy", "event_time": "2024-01-01T00:00:00.000001Z",
             "receive_time": "2024-01-01T00:00:00.000001Z", "sequence": None, "source": "ws", "raw": "{}"}
        )
    )  # fmt: skip
    from msgspec.structs import replace

    cases = {
        datetime(2024, 1, 1, 0, 0, 0, 5, tzinfo=UTC): "2024-01-01T00:00:00.000005Z",
        datetime(2024, 1, 1, tzinfo=UTC): "2024-01-01T00:00:00.000000Z",
        datetime(2024, 1, 1, 2, 0, 0, 7, tzinfo=timezone(timedelta(hours=2))): "2024-01-01T00:00:00.000007Z",
    }
    for value, text in cases.items():
        wire = orjson.loads(replace(base, event_time=value, receive_time=value).to_wire())
        assert wire["event_time"] == wire["receive_time"] == text


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"price": Decimal("64998.50000000"), "size": Decimal("1.000")},
        {"size": Decimal("0.000001")},  # the smallest str() still writes plainly
        {"size": Decimal("1E-7")},
        {"price": Decimal("1E+3")},
        {"product_id": 'E"X-USD', "exchange": 'co,"price":"1E-9"'},  # quotes cannot fake the field markers
        {"raw": 'match \u00e9 \u2603 \x01 "quoted" \\ E', "sequence": None},
        {"source": "backfill", "trade_id": 2**62},
    ],
)
def test_fast_wire_encoding_is_byte_identical_to_the_plain_one(changes: dict) -> None:
    trade = make_trade(**changes)
    assert trade.to_wire() == trade._to_wire_plain()
    assert Trade.from_wire(trade.to_wire()) == trade
