"""The dead-letter contract: what a record that could not be accepted looks like on the DLQ topic.

Value: the original bytes, untouched (a frame from the exchange, or a Kafka message value).
Key: the original key if there was one. Headers (all UTF-8):

- ``dlq.reason``  why it was refused, e.g. ``not JSON: unexpected character`` (required)
- ``dlq.stage``   where: ``ingest`` (producer) or ``bronze`` (writer)
- ``dlq.source``  ``ws`` | ``backfill`` | ``replay`` | ``synthetic`` when known
- ``dlq.time``    when it was dead-lettered, ISO 8601 UTC
- ``dlq.origin``  ``topic/partition/offset`` of the original Kafka message (bronze stage)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from ingestion.events import format_time

REASON, STAGE, SOURCE, TIME, ORIGIN = "dlq.reason", "dlq.stage", "dlq.source", "dlq.time", "dlq.origin"
MAX_REASON_CHARS = 500


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


def read_dead_letter_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Headers of a consumed DLQ message as a dict (for tests, tools and the DLQ inspector)."""
    return {k: (v or b"").decode(errors="replace") for k, v in (headers or []) if k.startswith("dlq.")}
