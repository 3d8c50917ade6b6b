"""Pure parts of the bronze writer: Kafka message -> bronze row, batches, and the offset bookkeeping.

Exactly-once rests on one rule: the Kafka offsets a bronze append covers are written into that
append's Iceberg snapshot summary (``OFFSETS_PROPERTY``), as the *next* offset to read per
``topic/partition``. Each snapshot carries the full map (recorded offsets merged with its own), so the
newest snapshot that has the property is the table's whole truth; older ones are only walked when a
snapshot without it (e.g. maintenance) sits on top. Nothing here touches a socket or a bucket.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import pyarrow as pa

from infrastructure.tables import BRONZE_TRADES
from ingestion.events import InvalidTrade, Trade, format_decimal

OFFSETS_PROPERTY = "lakehouse.kafka.next-offsets"
ARROW_SCHEMA: pa.Schema = BRONZE_TRADES.schema.as_arrow()
COLUMNS: tuple[str, ...] = tuple(ARROW_SCHEMA.names)
SORT_KEYS = [
    (BRONZE_TRADES.schema.find_column_name(f.source_id), "ascending") for f in BRONZE_TRADES.sort_order.fields
]

TopicPartition = tuple[str, int]
Offsets = dict[TopicPartition, int]  # (topic, partition) -> next offset to read


class Message(NamedTuple):
    """What the writer needs of a consumed Kafka message (confluent's Message cannot be built in tests).

    A NamedTuple: immutable like a frozen dataclass, several times cheaper to build per message."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Poison:
    """A message on the trades topic that is not a valid trade; it goes to the DLQ with ``reason``."""

    message: Message
    reason: str

    @property
    def origin(self) -> tuple[str, int, int]:
        return (self.message.topic, self.message.partition, self.message.offset)


def to_row(trade: Trade, message: Message, ingest_time: datetime) -> tuple:
    """One bronze row in ``COLUMNS`` order; decimals stay strings exactly as on the wire."""
    return (
        trade.exchange,
        trade.product_id,
        trade.trade_id,
        format_decimal(trade.price),
        format_decimal(trade.size),
        trade.side,
        trade.event_time,
        trade.receive_time,
        trade.sequence,
        trade.source,
        trade.raw,
        message.topic,
        message.partition,
        message.offset,
        datetime.fromtimestamp(message.timestamp_ms / 1000, UTC),
        ingest_time,
    )


@dataclass
class Batch:
    """Rows and dead letters waiting for one bronze append, and the offsets they cover."""

    rows: list[tuple] = field(default_factory=list)
    poison: list[Poison] = field(default_factory=list)
    next_offsets: Offsets = field(default_factory=dict)
    opened_at: float | None = None  # monotonic time of the first message

    def add(self, message: Message, ingest_time: datetime, now: float) -> Poison | None:
        """Parse and keep ``message``; returns the ``Poison`` if it is not a trade (it is kept too)."""
        if self.opened_at is None:
            self.opened_at = now
        self.next_offsets[(message.topic, message.partition)] = message.offset + 1
        try:
            if message.value is None:
                raise InvalidTrade("empty message value (tombstone)")
            self.rows.append(to_row(Trade.from_wire(message.value), message, ingest_time))
        except InvalidTrade as exc:
            poison = Poison(message, str(exc))
            self.poison.append(poison)
            return poison
        return None

    def __len__(self) -> int:
        return len(self.rows) + len(self.poison)

    def due(self, flush_rows: int, flush_seconds: float, now: float) -> bool:
        if not self.next_offsets:
            return False
        return len(self) >= flush_rows or (
            self.opened_at is not None and now - self.opened_at >= flush_seconds
        )

    def without_covered(self, recorded: Mapping[TopicPartition, int]) -> Batch:
        """The part of this batch the table does not hold yet (another writer may have appended some)."""

        def fresh(topic: str, partition: int, offset: int) -> bool:
            return offset >= recorded.get((topic, partition), 0)

        t, p, o = (
            COLUMNS.index("kafka_topic"),
            COLUMNS.index("kafka_partition"),
            COLUMNS.index("kafka_offset"),
        )
        return Batch(
            rows=[r for r in self.rows if fresh(r[t], r[p], r[o])],
            poison=[x for x in self.poison if fresh(*x.origin)],
            next_offsets={tp: n for tp, n in self.next_offsets.items() if n > recorded.get(tp, 0)},
            opened_at=self.opened_at,
        )

    def to_arrow(self) -> pa.Table:
        """The rows in the table's declared sort order (pyiceberg appends data as given)."""
        columns = list(zip(*self.rows, strict=True)) if self.rows else [[] for _ in COLUMNS]
        table = pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, ARROW_SCHEMA, strict=True)],
            schema=ARROW_SCHEMA,
        )
        return table.sort_by(SORT_KEYS)

    def newest_event_time(self) -> datetime | None:
        i = COLUMNS.index("event_time")
        return max((r[i] for r in self.rows), default=None)


def encode_offsets(offsets: Mapping[TopicPartition, int]) -> str:
    return json.dumps({f"{t}/{p}": n for (t, p), n in sorted(offsets.items())}, separators=(",", ":"))


def decode_offsets(text: str) -> Offsets:
    found: Offsets = {}
    for name, offset in json.loads(text).items():
        topic, _, partition = name.rpartition("/")
        found[(topic, int(partition))] = int(offset)
    return found


def merge_offsets(recorded: Mapping[TopicPartition, int], new: Mapping[TopicPartition, int]) -> Offsets:
    """Offsets only move forward: a writer never records less than the table already holds."""
    merged = dict(recorded)
    for tp, n in new.items():
        merged[tp] = max(n, merged.get(tp, 0))
    return merged


def recorded_offsets(summaries_newest_first: Iterable[Mapping[str, str]]) -> Offsets:
    """The table's offsets: from the newest snapshot summary that carries them (empty if none)."""
    for summary in summaries_newest_first:
        text = summary.get(OFFSETS_PROPERTY)
        if text:
            return decode_offsets(text)
    return {}
