"""The dead-letter contract: what a record that could not be accepted looks like on the DLQ topic.

Value: the original bytes, untouched (a frame from the exchange, or a Kafka message value).
Key: the original key if there was one. Headers (all UTF-8):

- ``dlq.reason``  why it was refused, e.g. ``not JSON: unexpected character`` (required)
- ``dlq.stage``   where: ``ingest`` (producer) or ``bronze`` (writer)
- ``dlq.source``  ``ws`` | ``backfill`` | ``replay`` | ``synthetic`` when known; ``poll`` for a
  reference-price pair a CoinGecko answer gave no usable price for (the value is the whole answer)
- ``dlq.time``    when it was dead-lettered, ISO 8601 UTC
- ``dlq.origin``  ``topic/partition/offset`` of the original Kafka message (bronze stage)
- ``dlq.size``, ``dlq.sha256``  only when the value is a prefix: a frame too big for the broker
  (``kafka.max_message_bytes``) is cut to ``dlq.truncated`` bytes; its full size and digest say
  what it was, so nothing a venue sends can make the dead letter itself undeliverable

A refused trade that still names its trade id (a match frame with a bad price, a REST element
that failed validation) is keyed ``exchange:product_id`` like a trade: silver's completeness check
reads those ids back with :func:`dead_lettered_trade`, so they are not mistaken for lost trades.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson

from ingestion.events import format_time

REASON, STAGE, SOURCE, TIME, ORIGIN = "dlq.reason", "dlq.stage", "dlq.source", "dlq.time", "dlq.origin"
SIZE, SHA256, TRUNCATED = "dlq.size", "dlq.sha256", "dlq.truncated"
MAX_REASON_CHARS = 500
# room left in a message for the key, the headers and the record's framing
ENVELOPE_BYTES = 4096
MAX_NAMED_BYTES = 1 << 20  # larger payloads are not trades: not parsed for an id


def dead_letter_headers(
    reason: str,
    stage: str,
    source: str | None = None,
    origin: tuple[str, int, int] | None = None,
    now: datetime | None = None,
) -> list[tuple[str, bytes]]:
    headers = [
        (REASON, reason[:MAX_REASON_CHARS].encode()),
        (STAGE, stage.encode()),
        (TIME, format_time(now or datetime.now(UTC)).encode()),
    ]
    if source:
        headers.append((SOURCE, source.encode()))
    if origin:
        headers.append((ORIGIN, "/".join(map(str, origin)).encode()))
    return headers


def bounded_dead_letter(
    value: bytes | None,
    reason: str,
    stage: str,
    source: str | None,
    max_message_bytes: int,
    origin: tuple[str, int, int] | None = None,
) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    """The value and headers of a dead letter that always fits in a broker message: an oversized value
    becomes its prefix, with its size and sha256 in headers."""
    headers = dead_letter_headers(reason, stage, source, origin)
    limit = max(0, max_message_bytes - ENVELOPE_BYTES)
    if value is None or len(value) <= limit:
        return value, headers
    headers += [
        (SIZE, str(len(value)).encode()),
        (SHA256, hashlib.sha256(value).hexdigest().encode()),
        (TRUNCATED, str(limit).encode()),
    ]
    return value[:limit], headers


def read_dead_letter_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Headers of a consumed DLQ message as a dict (for tests, tools and the DLQ inspector)."""
    return {k: (v or b"").decode(errors="replace") for k, v in (headers or []) if k.startswith("dlq.")}


def named_trade(raw: bytes | str) -> tuple[str | None, int] | None:
    """(product_id or None, trade_id) that a refused payload still names, if it names one.

    ``{"type": "match", "trade_id": 11, "product_id": "BTC-USD", "price": "-1", ...}`` ->
    ``("BTC-USD", 11)``; a REST element has no product (``(None, 11)``); garbage -> None.
    """
    if len(raw) > MAX_NAMED_BYTES:
        return None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    trade_id, product = obj.get("trade_id"), obj.get("product_id")
    if not isinstance(trade_id, int) or isinstance(trade_id, bool):
        return None
    return (product if isinstance(product, str) else None, trade_id)


def dead_lettered_trade(key: bytes | None, value: bytes | None) -> tuple[str, str, int] | None:
    """(exchange, product_id, trade_id) of a DLQ message keyed ``exchange:product_id``, or None."""
    if not key or value is None:
        return None
    exchange, sep, product = key.decode(errors="replace").partition(":")
    named = named_trade(value)
    if not sep or named is None or (named[0] is not None and named[0] != product):
        return None
    return (exchange, product, named[1])
