"""The CoinGecko /simple/price parser, the reference-price wire format, its bronze rows and the
synthetic reference feed, against answers in the documented format (tests/fixtures/coingecko_answers)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from infrastructure.settings import CoinGeckoSettings, Settings
from ingestion.coingecko_parser import parse_simple_price
from ingestion.coingecko_poller import synthetic_answers
from ingestion.coingecko_rest import error_message, session_headers, simple_price_params
from ingestion.reference_events import InvalidReference, ReferencePrice
from ingestion.sources import synthetic_frames
from processing.bronze.reference_rows import REFERENCE_ROWS
from processing.bronze.rows import Batch, Consumed, Message

ANSWERS = Path(__file__).resolve().parents[1] / "fixtures" / "coingecko_answers"
RECEIVED = datetime(2024, 3, 25, 8, 45, 12, 345678, tzinfo=UTC)
PAIRS = {
    ("bitcoin", "usd"): "BTC-USD",
    ("bitcoin", "eur"): "BTC-EUR",
    ("ethereum", "usd"): "ETH-USD",
    ("ethereum", "eur"): "ETH-EUR",
}


def answer(name: str) -> bytes:
    return (ANSWERS / name).read_bytes().strip()


def test_every_pair_becomes_one_exact_event() -> None:
    prices, refused = parse_simple_price(answer("simple_price.json"), RECEIVED, PAIRS)
    assert refused == []
    by_pair = {(p.coin_id, p.vs_currency): p for p in prices}
    btc = by_pair["bitcoin", "usd"]
    # every digit of the JSON text, never through a float (float would give 67187.3358398074 too,
    # but not for ethereum's 3321.8249731929 -> checked as text below)
    assert btc.price == Decimal("67187.3358398074") and str(btc.price) == "67187.3358398074"
    assert str(by_pair["ethereum", "usd"].price) == "3321.8249731929"
    assert btc.product_id == "BTC-USD" and btc.source == "coingecko"
    assert btc.event_time == datetime(2024, 3, 25, 8, 45, tzinfo=UTC)  # last_updated_at 1711356300
    assert by_pair["ethereum", "eur"].event_time == datetime(2024, 3, 25, 8, 44, 52, tzinfo=UTC)
    assert btc.receive_time == RECEIVED and btc.raw == answer("simple_price.json").decode()


def test_partial_answers_are_refused_with_their_reason() -> None:
    pairs = {**PAIRS, ("solana", "usd"): "SOL-USD"}
    prices, refused = parse_simple_price(answer("simple_price_partial.json"), RECEIVED, pairs)
    assert {(p.coin_id, p.vs_currency) for p in prices} == {("bitcoin", "usd"), ("ethereum", "eur")}
    kinds = {(r.coin_id, r.vs_currency): (r.kind, r.reason) for r in refused}
    assert kinds == {
        ("bitcoin", "eur"): ("missing_currency", "bitcoin: vs currency 'eur' missing"),
        ("ethereum", "usd"): ("null_price", "ethereum/usd: price is null"),
        ("solana", "usd"): ("missing_id", "coin id 'solana' missing from the answer"),
    }
    assert len(prices) + len(refused) == len(pairs)  # nothing silently dropped


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"bitcoin":{"usd":0,"last_updated_at":1711356300}}', "non-positive"),
        (b'{"bitcoin":{"usd":-5.5,"last_updated_at":1711356300}}', "non-positive"),
        (b'{"bitcoin":{"usd":"67000","last_updated_at":1711356300}}', "must be a JSON number"),
        (b'{"bitcoin":{"usd":true,"last_updated_at":1711356300}}', "must be a JSON number"),
        (b'{"bitcoin":{"usd":67000}}', "last_updated_at missing"),
        (b'{"bitcoin":{"usd":67000,"last_updated_at":1711356300.5}}', "whole Unix seconds"),
        (b'{"bitcoin":{"usd":67000,"last_updated_at":1e30}}', "out of range"),
        (b'{"bitcoin":[1,2]}', "expected an object"),
    ],
)
def test_bad_values_are_refused_one_pair_at_a_time(body: bytes, reason: str) -> None:
    prices, refused = parse_simple_price(body, RECEIVED, {("bitcoin", "usd"): "BTC-USD"})
    assert prices == []
    assert [r.kind for r in refused] == ["invalid"] and reason in refused[0].reason


def test_an_integer_price_stays_exact_and_unasked_ids_are_ignored() -> None:
    body = b'{"bitcoin":{"usd":67000,"last_updated_at":1711356300},"tether":{"usd":1.0001}}'
    (price,), refused = parse_simple_price(body, RECEIVED, {("bitcoin", "usd"): "BTC-USD"})
    assert refused == [] and price.price == Decimal(67000)


@pytest.mark.parametrize("body", [b"<html>busy</html>", b"[1, 2]", b"\xff\xfe"])
def test_an_unusable_answer_is_one_error(body: bytes) -> None:
    with pytest.raises(InvalidReference):
        parse_simple_price(body, RECEIVED, PAIRS)


def test_wire_round_trip_keeps_every_digit_and_the_key() -> None:
    (price, *_), _ = parse_simple_price(answer("simple_price.json"), RECEIVED, PAIRS)
    wire = price.to_wire()
    assert orjson.loads(wire)["price"] == "67187.3358398074"
    assert ReferencePrice.from_wire(wire) == price
    assert price.key == b"coingecko:BTC-USD"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"price": 67000.5}, "price must be a decimal string"),
        ({"price": "-1"}, "non-positive"),
        ({"source": "coinbase"}, "unknown reference source"),
        ({"event_time": "2024-03-25T08:45:00"}, "no timezone"),
        ({"coin_id": ""}, "coin_id must be a non-empty string"),
    ],
)
def test_bad_wire_messages_name_their_fault(change: dict, reason: str) -> None:
    (price, *_), _ = parse_simple_price(answer("simple_price.json"), RECEIVED, PAIRS)
    obj = orjson.loads(price.to_wire()) | change
    with pytest.raises(InvalidReference, match=reason):
        ReferencePrice.from_wire(orjson.dumps(obj))
    with pytest.raises(InvalidReference, match="missing fields: raw"):
        ReferencePrice.from_wire(orjson.dumps({k: v for k, v in obj.items() if k != "raw"}))


def test_bronze_rows_keep_the_decimal_text_and_dead_letter_the_rest() -> None:
    prices, _ = parse_simple_price(answer("simple_price.json"), RECEIVED, PAIRS)
    values = [p.to_wire() for p in prices] + [b"not json", None]
    messages = [Message("ref", 0, i, 1711356312000, b"k", v) for i, v in enumerate(values)]
    batch = Batch(REFERENCE_ROWS)
    poison = batch.add(Consumed.of(messages), RECEIVED, 0.0)
    assert [p.message.offset for p in poison] == [4, 5]
    assert "not JSON" in poison[0].reason and "tombstone" in poison[1].reason
    table = batch.to_arrow()
    assert table.schema == REFERENCE_ROWS.arrow_schema
    assert table.column("product_id").to_pylist() == sorted(table.column("product_id").to_pylist())
    rows = {r["product_id"]: r for r in table.to_pylist()}
    assert rows["ETH-USD"]["price"] == "3321.8249731929"
    assert rows["ETH-USD"]["kafka_offset"] == 2 and rows["ETH-USD"]["ingest_time"] == RECEIVED
    assert REFERENCE_ROWS.is_row(values[0]) and not REFERENCE_ROWS.is_row(b"not json")
    assert batch.next_offsets == {("ref", 0): 6}


def test_pairs_map_to_products_only_by_settings() -> None:
    settings = CoinGeckoSettings(
        ids="bitcoin", vs_currencies="usd,usdt", products="bitcoin:usd=BTC-USD,bitcoin:usdt=BTC-USDT"
    )
    assert settings.pair_products() == {("bitcoin", "usd"): "BTC-USD", ("bitcoin", "usdt"): "BTC-USDT"}
    with pytest.raises(ValueError, match="no product mapped for bitcoin:eur"):
        CoinGeckoSettings(ids="bitcoin", vs_currencies="usd,eur", products="bitcoin:usd=BTC-USD")
    with pytest.raises(ValueError, match="expected COIN:VS=PRODUCT"):
        CoinGeckoSettings(ids="bitcoin", products="bitcoin:usd")


def test_requests_ask_for_full_precision_and_send_the_key_in_a_header() -> None:
    settings = CoinGeckoSettings(api_key="demo-key")
    params = simple_price_params(settings)
    assert params["precision"] == "full" and params["include_last_updated_at"] == "true"
    assert params["ids"] == "bitcoin,ethereum,solana,dogecoin" and "demo-key" not in str(params)
    assert session_headers(settings) == {"x-cg-demo-api-key": "demo-key"}
    assert session_headers(CoinGeckoSettings()) == {}
    assert error_message(answer("error_401.json")) == "API Key Missing (code 10002)"
    assert error_message(b'{"error":"invalid vs_currency"}') == "invalid vs_currency"


def test_synthetic_reference_prices_are_the_synthetic_trades_last_price() -> None:
    settings = Settings()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    answers = list(itertools.islice(synthetic_answers(settings, 7, start, 40.0), 3))
    frames = list(
        itertools.takewhile(
            lambda f: f[0] < answers[-1][0], synthetic_frames(settings.products, 7, start, 40.0)
        )
    )
    for due, body in answers:
        last = {}
        for when, frame in frames:
            obj = orjson.loads(frame)
            if when < due and obj["type"] == "match":
                last[obj["product_id"]] = obj["price"]
        prices, refused = parse_simple_price(
            body, due, settings.coingecko.pair_products(), "synthetic-coingecko"
        )
        assert refused == []
        assert {p.product_id: str(p.price) for p in prices} == last
        assert {p.event_time for p in prices} == {due}
        assert {p.source for p in prices} == {"synthetic-coingecko"}
