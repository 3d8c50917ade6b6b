"""The one normalized reference-price event (CoinGecko, or its synthetic twin) and its wire format.

A reference price is what a price aggregator says one coin is worth in one quote currency at one
moment; the lakehouse compares each venue's trades with it (``gold.price_deviation_1m``). Wire
format: a UTF-8 JSON object on ``kafka.reference_topic``, keyed ``source:product_id``::

    {"source": "coingecko", "coin_id": "bitcoin", "vs_currency": "usd", "product_id": "BTC-USD",
     "price": "67187.3358", "event_time": "2024-03-25T08:45:00.000000Z",
     "receive_time": "2024-03-25T08:45:12.345678Z", "raw": "{\\"bitcoin\\":{...}}"}

- ``price`` is a decimal string exactly as the API sent the number: never a float.
- ``event_time`` is the API's ``last_updated_at`` (whole seconds), ``receive_time`` this process's.
- ``source`` is ``coingecko`` or ``synthetic-coingecko``: synthetic prices never share a key with real ones.
- ``raw`` is the answer the price came from, kept for audit.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec
import orjson

from ingestion.events import (
    InvalidTrade,
    format_decimal,
    format_time,
    load_json_object,
    parse_decimal,
    parse_time,
)

REFERENCE_SOURCES: frozenset[str] = frozenset(("coingecko", "synthetic-coingecko"))
WIRE_FIELDS = ("source", "coin_id", "vs_currency", "product_id", "price", "event_time", "receive_time", "raw")
_ZERO = Decimal(0)


class InvalidReference(InvalidTrade):
    """A value that cannot be a reference price; ``str(exc)`` is the dead-letter reason. A subclass
    of ``InvalidTrade`` so the helpers shared with trades (``parse_decimal``, ...) raise what callers catch."""


class ReferencePrice(msgspec.Struct, frozen=True, gc=False):
    """Immutable and validated on construction."""

    source: str
    coin_id: str
    vs_currency: str
    product_id: str
    price: Decimal
    event_time: datetime  # the API's last_updated_at, UTC
    receive_time: datetime  # local receive time, UTC
    raw: str

    def __post_init__(self) -> None:
        if self.source not in REFERENCE_SOURCES:
            raise InvalidReference(f"unknown reference source {self.source!r}")
        for name in ("coin_id", "vs_currency", "product_id", "raw"):
            if not getattr(self, name):
                raise InvalidReference(f"{name} must be a non-empty string")
        if not self.price.is_finite() or self.price <= _ZERO:
            raise InvalidReference(f"non-positive or non-finite price {self.price}")
        if self.event_time.tzinfo is None or self.receive_time.tzinfo is None:
            raise InvalidReference("times must be timezone-aware UTC")

    @property
    def key(self) -> bytes:
        """Kafka key: one product of one source keeps one partition, in order."""
        return f"{self.source}:{self.product_id}".encode()

    def to_wire(self) -> bytes:
        return orjson.dumps(
            {
                "source": self.source,
                "coin_id": self.coin_id,
                "vs_currency": self.vs_currency,
                "product_id": self.product_id,
                "price": format_decimal(self.price),
                "event_time": format_time(self.event_time),
                "receive_time": format_time(self.receive_time),
                "raw": self.raw,
            }
        )

    @classmethod
    def from_wire(cls, value: bytes | str) -> ReferencePrice:
        """Parse a wire message; raises ``InvalidReference`` (an ``InvalidTrade``) with the reason."""
        try:
            obj = load_json_object(value)
        except InvalidTrade as exc:
            raise InvalidReference(str(exc)) from None
        missing = [f for f in WIRE_FIELDS if f not in obj]
        if missing:
            raise InvalidReference(f"missing fields: {', '.join(missing)}")
        for name in ("source", "coin_id", "vs_currency", "product_id", "raw"):
            if not isinstance(obj[name], str):
                raise InvalidReference(f"{name} must be a string")
        try:
            price = parse_decimal(obj["price"], "price")
            event_time = parse_time(obj["event_time"], "event_time")
            receive_time = parse_time(obj["receive_time"], "receive_time")
        except InvalidTrade as exc:  # the shared helpers' error, as this event's
            raise InvalidReference(str(exc)) from None
        return cls(
            source=obj["source"],
            coin_id=obj["coin_id"],
            vs_currency=obj["vs_currency"],
            product_id=obj["product_id"],
            price=price,
            event_time=event_time,
            receive_time=receive_time,
            raw=obj["raw"],
        )
