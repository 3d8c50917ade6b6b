"""Pure parsing of Coinbase Exchange frames into the one trade event (or a heartbeat / control frame).

Everything here is a function of its arguments: no sockets, no clocks. A frame that cannot be
accepted raises :class:`~ingestion.events.InvalidTrade` whose message is the dead-letter reason.

Coinbase's Exchange feed (WebSocket ``matches`` channel and REST ``/products/{id}/trades``) reports
the MAKER order's side. The trade event carries the TAKER side, so ``side`` is flipped here:
a maker ``sell`` means a buyer lifted the offer -> taker ``buy``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

import msgspec
import orjson

from ingestion.events import (
    InvalidTrade,
    Source,
    Trade,
    as_utc,
    load_json_object,
    parse_decimal,
    parse_time,
)
from ingestion.frames import Control, ExchangeError, Heartbeat, Parsed, Skipped

EXCHANGE = "coinbase"
TAKER_SIDE = {"buy": "sell", "sell": "buy"}  # maker side -> taker side
MATCH_TYPES = frozenset(("match", "last_match"))
# control frames that need no action beyond counting them
CONTROL_TYPES = frozenset(("subscriptions",))
# Frame types of the Exchange feed's other channels (level2 / level2_batch: snapshot, l2update;
# ticker / ticker_batch; status; full: received, open, done, change, activate; auctionfeed;
# rfq_matches). A subscription (or a public capture) may carry them; the pipeline uses none, so
# they are counted by type and skipped, not dead-lettered: the DLQ is for frames that are broken.
SKIPPED_TYPES = frozenset(
    ("snapshot", "l2update", "ticker", "status", "received", "open", "done", "change", "activate",
     "auction", "rfq_match")
)  # fmt: skip
MATCH_FIELDS = ("trade_id", "product_id", "price", "size", "side", "time")
MATCH_FIELDS_SET = frozenset(MATCH_FIELDS)
REST_FIELDS = ("trade_id", "price", "size", "side", "time")


class _Match(msgspec.Struct, gc=False):
    """The fields of a ``match`` / ``last_match`` frame the trade needs, as msgspec checks them
    (other fields, such as the order ids, are ignored; a float price or a boolean id is refused)."""

    type: Literal["match", "last_match"]
    trade_id: int
    product_id: str
    price: str
    size: str
    side: str
    time: datetime  # RFC 3339; a naive or odd time is left to the general path
    sequence: int | None = None


_MATCH_DECODER = msgspec.json.Decoder(_Match)


def parse_frame(
    raw: bytes | str,
    receive_time: datetime,
    source: Source,
    products: frozenset[str],
    max_bytes: int,
    exchange: str = EXCHANGE,
) -> Parsed:
    """One WebSocket frame -> a trade, heartbeat, control, skipped or error frame.

    A ``match`` (``last_match`` is the same shape, sent once right after subscribing)::

        {"type": "match", "trade_id": 10, "sequence": 50,
         "maker_order_id": "ac928c66-ca53-498f-9c13-a110027a60e8",
         "taker_order_id": "132fb6ae-456b-4654-b4e0-d681ac05cea1",
         "time": "2014-11-07T08:19:27.028459Z", "product_id": "BTC-USD",
         "size": "5.23512", "price": "400.23", "side": "sell"}

    becomes a ``Trade`` with ``side="buy"`` (the taker), of venue ``exchange`` (Coinbase's, except
    for synthetic frames, which use this format but are a venue of their own). Raises ``InvalidTrade`` for frames that are
    oversized, not JSON, of an unknown type, missing fields, for a product not configured, or with
    non-positive price or size.
    """
    if len(raw) > max_bytes:
        raise InvalidTrade(f"oversized frame: {len(raw)} bytes > {max_bytes}")
    # fast path for the frame that is nearly every frame: one typed C decode of a match
    try:
        match = _MATCH_DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass  # another frame type, or a bad match: the general path below says exactly what
    else:
        side = TAKER_SIDE.get(match.side)
        if match.product_id in products and side is not None and match.time.tzinfo is not None:
            try:
                # the decoder has checked both are strings; Decimal() directly is the cheap call
                price, size = Decimal(match.price), Decimal(match.size)
            except InvalidOperation:
                pass  # the general path names the field
            else:
                return Trade(
                    exchange=exchange,
                    product_id=match.product_id,
                    trade_id=match.trade_id,
                    price=price,
                    size=size,
                    side=side,
                    event_time=as_utc(match.time),
                    receive_time=receive_time,
                    sequence=match.sequence,
                    source=source,
                    raw=raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace"),
                )
    obj = load_json_object(raw)
    kind = obj.get("type")
    if kind in MATCH_TYPES:
        if not obj.keys() >= MATCH_FIELDS_SET:
            missing = [f for f in MATCH_FIELDS if f not in obj]
            raise InvalidTrade(f"{kind} missing fields: {', '.join(missing)}")
        product = obj["product_id"]
        if not isinstance(product, str) or product not in products:
            raise InvalidTrade(f"unknown product {product!r}")
        sequence = obj.get("sequence")
        if sequence is not None and (not isinstance(sequence, int) or isinstance(sequence, bool)):
            raise InvalidTrade(f"sequence must be an integer, got {sequence!r}")
        return _trade(obj, product, receive_time, sequence, source, raw, exchange)
    if kind == "heartbeat":
        product = obj.get("product_id")
        if not isinstance(product, str) or product not in products:
            raise InvalidTrade(f"heartbeat for unknown product {product!r}")
        last = obj.get("last_trade_id")
        if not isinstance(last, int) or isinstance(last, bool):
            raise InvalidTrade(f"heartbeat last_trade_id must be an integer, got {last!r}")
        return Heartbeat(product, last, obj.get("sequence"))
    if kind in SKIPPED_TYPES:
        return Skipped(kind)
    if kind in CONTROL_TYPES:
        return Control(kind, obj)
    if kind == "error":
        return ExchangeError(str(obj.get("message", "")), str(obj.get("reason", "")))
    raise InvalidTrade(f"unknown frame type {kind!r}")


def parse_rest_trade(obj: object, product_id: str, receive_time: datetime) -> Trade:
    """One element of ``GET /products/{product_id}/trades`` (newest first) -> a ``backfill`` Trade::

        {"time": "2014-11-07T22:19:28.578544Z", "trade_id": 74,
         "price": "10.00000000", "size": "0.01000000", "side": "buy"}

    REST ``side`` is the maker side too. The REST payload has no ``sequence``.
    """
    if not isinstance(obj, dict):
        raise InvalidTrade(f"expected a JSON object, got {type(obj).__name__}")
    missing = [f for f in REST_FIELDS if f not in obj]
    if missing:
        raise InvalidTrade(f"REST trade missing fields: {', '.join(missing)}")
    return _trade(obj, product_id, receive_time, None, "backfill", orjson.dumps(obj))


def _trade(
    obj: dict,
    product: str,
    receive_time: datetime,
    sequence: int | None,
    source: Source,
    raw: bytes | str,
    exchange: str = EXCHANGE,
) -> Trade:
    trade_id = obj["trade_id"]
    if not isinstance(trade_id, int) or isinstance(trade_id, bool):
        raise InvalidTrade(f"trade_id must be an integer, got {trade_id!r}")
    side = TAKER_SIDE.get(obj["side"]) if isinstance(obj["side"], str) else None
    if side is None:
        raise InvalidTrade(f"unknown side {obj['side']!r}")
    return Trade(
        exchange=exchange,
        product_id=product,
        trade_id=trade_id,
        price=parse_decimal(obj["price"], "price"),
        size=parse_decimal(obj["size"], "size"),
        side=side,
        event_time=parse_time(obj["time"], "time"),
        receive_time=receive_time,
        sequence=sequence,
        source=source,
        raw=raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace"),
    )
