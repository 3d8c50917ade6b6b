"""Reference-price messages -> ``bronze.reference_prices`` rows (pure): the row format the bronze
writer's second instance appends with (``streams.REFERENCE_PRICES``).

A few events per poll interval: each message takes the checked path
(:meth:`ReferencePrice.from_wire`); one that is not a valid event becomes a ``Poison`` with the
reason, dead-lettered by the writer exactly as a bad trade is.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from infrastructure.tables import BRONZE_REFERENCE_PRICES
from ingestion.events import InvalidTrade, format_decimal
from ingestion.reference_events import ReferencePrice
from processing.bronze.rows import Consumed, Poison, RowFormat, parses, row_format, rows_to_arrow

ARROW_SCHEMA: pa.Schema = BRONZE_REFERENCE_PRICES.schema.as_arrow()


def reference_columns(value: bytes) -> dict[str, object]:
    """A reference-topic value -> ``bronze.reference_prices``' wire columns, in schema order (the
    embedded writer's rows and the Spark job's alike); raises ``InvalidTrade``."""
    event = ReferencePrice.from_wire(value)
    return {
        "source": event.source,
        "coin_id": event.coin_id,
        "vs_currency": event.vs_currency,
        "product_id": event.product_id,
        "price": format_decimal(event.price),
        "event_time": event.event_time,
        "receive_time": event.receive_time,
        "raw": event.raw,
    }


def decode_reference(consumed: Consumed, ingest_time: datetime) -> tuple[pa.Table, list[Poison]]:
    rows: list[tuple] = []
    poison: list[Poison] = []
    for i in range(len(consumed.values)):
        message = consumed.message(i)
        try:
            if message.value is None:
                raise InvalidTrade("empty message value (tombstone)")
            columns = reference_columns(message.value)
        except InvalidTrade as exc:
            poison.append(Poison(message, str(exc)))
            continue
        rows.append(
            (
                *columns.values(),
                message.topic,
                message.partition,
                message.offset,
                datetime.fromtimestamp(message.timestamp_ms / 1000, UTC),
                ingest_time,
            )
        )
    return rows_to_arrow(rows, ARROW_SCHEMA), poison


REFERENCE_ROWS: RowFormat = row_format(
    BRONZE_REFERENCE_PRICES, decode_reference, parses(ReferencePrice.from_wire)
)
