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


def decode_reference(consumed: Consumed, ingest_time: datetime) -> tuple[pa.Table, list[Poison]]:
    rows: list[tuple] = []
    poison: list[Poison] = []
    for i in range(len(consumed.values)):
        message = consumed.message(i)
        try:
            if message.value is None:
                raise InvalidTrade("empty message value (tombstone)")
            event = ReferencePrice.from_wire(message.value)
        except InvalidTrade as exc:
            poison.append(Poison(message, str(exc)))
            continue
        rows.append(
            (
                event.source,
                event.coin_id,
                event.vs_currency,
                event.product_id,
                format_decimal(event.price),
                event.event_time,
                event.receive_time,
                event.raw,
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
