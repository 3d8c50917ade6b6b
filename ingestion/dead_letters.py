"""The dead-letter contract: what a record that could not be accepted looks like on the DLQ topic.

Value: the original bytes, untouched (a frame from the exchange, or a Kafka message value).
Key: the original key if there was one. Headers (all UTF-8):

- ``dlq.reason``  why it was refused, e.g. ``not JSON: unexpected character`` (required)
- ``dlq.stage``   where: ``ingest`` (producer) or ``bronze`` (writer)
- ``dlq.source``  ``ws`` | ``backfill`` | ``replay`` | ``synthetic`` when known
- ``dlq.time``    when it was dead-lettered, ISO 8601 UTC
- ``dlq.origin``  ``topic/partition/offset`` of the original Kafka message (bronze stage)
- ``dlq.size``, ``dlq.sha256``  only when the value is a prefix: a frame too big for the broker
  (``kafka.max_message_bytes``) is cut to ``dlq.truncated`` bytes; its full size and digest say
  what it was, so nothing a venue sends can make the dead letter itself undeliverable
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from ingestion.events import format_time

REASON, STAGE, SOURCE, TIME, ORIGIN = "dlq.reason", "dlq.stage", "dlq.source", "dlq.time", "dlq.origin"
SIZE, SHA256, TRUNCATED = "dlq.size", "dlq.sha256", "dlq.truncated"
MAX_REASON_CHARS = 500
# room left in a message for the key, the headers and the record's framing
ENVELOPE_BYTES = 4096


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
