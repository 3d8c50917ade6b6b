"""CoinGecko ``GET /api/v3/simple/price`` answers -> reference-price events (pure: no sockets).

A request ``?ids=bitcoin,ethereum&vs_currencies=usd,eur&include_last_updated_at=true&precision=full``
is answered with one object per coin id it knows, one number per quote currency, and the coin's
``last_updated_at`` in Unix seconds (docs.coingecko.com, "Coin Price by IDs")::

    {"bitcoin": {"usd": 67187.3358398074, "eur": 62110.5, "last_updated_at": 1711356300},
     "ethereum": {"usd": 3321.82, "eur": null, "last_updated_at": 1711356292}}

The numbers are parsed from the JSON text as exact decimals (``json.loads(parse_float=Decimal)``),
never through a float. Each polled (coin id, vs currency) pair yields either one
:class:`~ingestion.reference_events.ReferencePrice` or one :class:`Refused` with its reason: a coin
id the answer leaves out (an unknown or delisted id is silently omitted by the API), a currency
missing from a coin's object, a ``null`` price (no price for that pair), or a value that is not a
positive number. Coin ids nobody asked for are ignored. The product a pair maps to comes from
settings (``coingecko.products``), never from guessing at the id's spelling.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal, NamedTuple

from ingestion.reference_events import InvalidReference, ReferencePrice

EXCHANGE = "coingecko"
LAST_UPDATED = "last_updated_at"
RefusedKind = Literal["missing_id", "missing_currency", "null_price", "invalid"]
REFUSED_KINDS: tuple[RefusedKind, ...] = ("missing_id", "missing_currency", "null_price", "invalid")


class Refused(NamedTuple):
    """A polled pair the answer gives no usable price for."""

    coin_id: str
    vs_currency: str
    product_id: str
    kind: RefusedKind
    reason: str


class Answer(NamedTuple):
    prices: list[ReferencePrice]
    refused: list[Refused]


def load_answer(body: bytes | str) -> dict:
    """The answer as a dict with exact decimals; ``InvalidReference`` if it is not a JSON object."""
    try:
        obj = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise InvalidReference(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidReference(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def parse_simple_price(
    body: bytes | str,
    received: datetime,
    pairs: Mapping[tuple[str, str], str],
    source: str = EXCHANGE,
) -> Answer:
    """One event or one refusal per pair of ``pairs`` ((coin id, vs currency) -> product id).

    Raises ``InvalidReference`` when the whole answer is unusable (not a JSON object)."""
    answer = load_answer(body)
    raw = body.decode("utf-8") if isinstance(body, bytes) else body
    prices: list[ReferencePrice] = []
    refused: list[Refused] = []
    for (coin, vs), product in pairs.items():
        coin_obj = answer.get(coin)
        if coin_obj is None:
            refused.append(
                Refused(coin, vs, product, "missing_id", f"coin id {coin!r} missing from the answer")
            )
            continue
        if not isinstance(coin_obj, dict):
            refused.append(
                Refused(coin, vs, product, "invalid", f"{coin}: expected an object, got {coin_obj!r}")
            )
            continue
        if vs not in coin_obj:
            refused.append(
                Refused(coin, vs, product, "missing_currency", f"{coin}: vs currency {vs!r} missing")
            )
            continue
        value = coin_obj[vs]
        if value is None:
            refused.append(Refused(coin, vs, product, "null_price", f"{coin}/{vs}: price is null"))
            continue
        try:
            prices.append(
                ReferencePrice(
                    source=source,
                    coin_id=coin,
                    vs_currency=vs,
                    product_id=product,
                    price=_number(value, f"{coin}/{vs} price"),
                    event_time=_epoch_seconds(coin_obj.get(LAST_UPDATED), f"{coin} {LAST_UPDATED}"),
                    receive_time=received,
                    raw=raw,
                )
            )
        except InvalidReference as exc:
            refused.append(Refused(coin, vs, product, "invalid", f"{coin}/{vs}: {exc}"))
    return Answer(prices, refused)


def _number(value: object, name: str) -> Decimal:
    """A JSON number as an exact decimal (already a ``Decimal`` if it had a fraction or exponent)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidReference(f"{name} must be a JSON number, got {value!r}")
    return value if isinstance(value, Decimal) else Decimal(value)


def _epoch_seconds(value: object, name: str) -> datetime:
    if value is None:
        raise InvalidReference(f"{name} missing (request include_last_updated_at=true)")
    seconds = _number(value, name)
    if not seconds.is_finite() or seconds <= 0 or seconds != seconds.to_integral_value():
        raise InvalidReference(f"{name} must be whole Unix seconds, got {value!r}")
    try:
        return datetime.fromtimestamp(int(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidReference(f"{name} out of range: {value!r}") from None
