"""Pure parts of the bronze writer: Kafka messages -> bronze rows (Arrow), batches, and the offset bookkeeping.

Exactly-once rests on one rule: the Kafka offsets a bronze append covers are written into that
append's Iceberg snapshot summary (``OFFSETS_PROPERTY``), as the *next* offset to read per
``topic/partition``. Each snapshot carries the full map (recorded offsets merged with its own), so the
newest snapshot that has the property is the table's whole truth; older ones are only walked when a
snapshot without it (e.g. maintenance) sits on top. Nothing here touches a socket or a bucket.

Messages become rows by one of two paths that give the same row for the same message:
- the columnar fast path (:func:`decode_columns`): msgspec reads each message with decimals and
  times kept as text, then Arrow builds and checks whole columns at once. It only vouches for
  messages in the canonical wire form that ``Trade.to_wire`` writes (positive plain decimal strings,
  times ending in ``.ffffffZ``), for which the stored text provably equals what the checked path
  would store; the columns are about four times cheaper than a ``Trade`` and a row tuple per message;
- the checked path (:func:`Trade.from_wire` per message) for every message the fast path does not
  vouch for: it builds the row, or the ``Poison`` with the dead-letter reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from operator import attrgetter
from typing import NamedTuple

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from infrastructure.tables import BRONZE_TRADES, TableDef
from ingestion.events import SIDES, SOURCES, InvalidTrade, Trade, format_decimal

OFFSETS_PROPERTY = "lakehouse.kafka.next-offsets"
ARROW_SCHEMA: pa.Schema = BRONZE_TRADES.schema.as_arrow()
COLUMNS: tuple[str, ...] = tuple(ARROW_SCHEMA.names)
TIMESTAMP = pa.timestamp("us", tz="UTC")
INT64_RANGE = range(-(2**63), 2**63)
# the text forms the fast path vouches for (RE2 syntax, checked column-wise by Arrow). A plain
# decimal without redundant leading zeros is its own format_decimal(Decimal(text)); a time of this
# shape means the same instant to Arrow's parser and to Python's. Anything else takes the checked path.
POSITIVE_PLAIN_DECIMAL = r"^([1-9][0-9]*(\.[0-9]+)?|0\.[0-9]*[1-9][0-9]*)$"
CANONICAL_TIME = r"^[12][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$"

TopicPartition = tuple[str, int]
Offsets = dict[TopicPartition, int]  # (topic, partition) -> next offset to read


class Message(NamedTuple):
    """What the writer needs of a consumed Kafka message (confluent's Message cannot be built in tests).

    A NamedTuple: immutable like a frozen dataclass, several times cheaper to build. The writer only
    builds one for a message that takes the checked path (see ``Consumed``)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


class Consumed(NamedTuple):
    """Consumed messages column by column, in consumed order. The writer reads each column off
    confluent's messages in one C-level pass (``map``) rather than building an object per message;
    a ``Message`` is only built for one that takes the checked path."""

    topics: Sequence[str]
    partitions: Sequence[int]
    offsets: Sequence[int]
    timestamps_ms: Sequence[int]
    keys: Sequence[bytes | None]
    values: Sequence[bytes | None]

    @classmethod
    def of(cls, messages: Sequence[Message]) -> Consumed:
        return cls(*zip(*messages, strict=True)) if messages else cls((), (), (), (), (), ())

    def message(self, i: int) -> Message:
        return Message(*(column[i] for column in self))

    def take(self, positions: Sequence[int]) -> Consumed:
        return Consumed(*([column[i] for i in positions] for column in self))


@dataclass(frozen=True, slots=True)
class Poison:
    """A message on the trades topic that is not a valid trade; it goes to the DLQ with ``reason``."""

    message: Message
    reason: str

    @property
    def origin(self) -> tuple[str, int, int]:
        return (self.message.topic, self.message.partition, self.message.offset)


# The wire trade as the fast path reads it: Trade's fields and types (JSON, integers and the
# literals checked by msgspec), but decimals and times left as text for Arrow to check and convert
# a whole column at a time.
_WireText = msgspec.defstruct(
    "_WireText",
    [(f.name, str if f.type in (Decimal, datetime) else f.type) for f in msgspec.structs.fields(Trade)],
    gc=False,
)
_WIRE_TEXT = msgspec.json.Decoder(_WireText)
# times stay text until Arrow has checked their shape
_WIRE_COLUMNS = [
    (attrgetter(name), pa.large_string() if name.endswith("_time") else ARROW_SCHEMA.field(name).type)
    for name in _WireText.__struct_fields__
]
_NOT_WIRE = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, TypeError)
_SIDES = pa.array(sorted(SIDES))
_SOURCES = pa.array(sorted(SOURCES))


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


def rows_to_arrow(rows: Sequence[tuple], schema: pa.Schema = ARROW_SCHEMA) -> pa.Table:
    """Row tuples in ``schema``'s column order -> an Arrow table of it (unsorted); bronze.trades' by default."""
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    return pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )


def decode_checked(messages: Iterable[Message], ingest_time: datetime) -> tuple[pa.Table, list[Poison]]:
    """The per-message path: a row for each valid trade, a ``Poison`` with its reason for the rest."""
    rows: list[tuple] = []
    poison: list[Poison] = []
    for message in messages:
        try:
            if message.value is None:
                raise InvalidTrade("empty message value (tombstone)")
            trade = Trade.from_wire(message.value)
            # the bronze columns are 64-bit; a bigger id would fail the whole append later
            if trade.trade_id not in INT64_RANGE or (
                trade.sequence is not None and trade.sequence not in INT64_RANGE
            ):
                raise InvalidTrade("trade_id or sequence out of the 64-bit range")
            rows.append(to_row(trade, message, ingest_time))
        except InvalidTrade as exc:
            poison.append(Poison(message, str(exc)))
    return rows_to_arrow(rows), poison


def decode_columns(consumed: Consumed, ingest_time: datetime) -> tuple[pa.Table, list[Poison]]:
    """The same rows and poison as :func:`decode_checked`, column-wise for every message the fast
    path vouches for (see the module docstring); only the others are decoded one by one."""
    count = len(consumed.values)
    slow: list[int] = []  # positions in ``consumed``: dead letters keep the topic's order
    try:
        wires = list(map(_WIRE_TEXT.decode, consumed.values))  # a None value raises TypeError
    except _NOT_WIRE:
        wires = []
        for i, value in enumerate(consumed.values):
            try:
                wires.append(_WIRE_TEXT.decode(value))
            except _NOT_WIRE:
                slow.append(i)
    skipped = set(slow)
    fast_at = [i for i in range(count) if i not in skipped] if slow else range(count)
    table = ARROW_SCHEMA.empty_table()
    if wires:
        try:
            table, unsure = _vouched_table(wires, consumed.take(fast_at) if slow else consumed, ingest_time)
        except (pa.ArrowException, OverflowError):  # e.g. an id beyond 64 bits: let each message say
            return decode_checked(map(consumed.message, range(count)), ingest_time)
        slow = sorted(slow + [fast_at[i] for i in unsure])
    if not slow:
        return table, []
    checked, poison = decode_checked(map(consumed.message, slow), ingest_time)
    return pa.concat_tables([table, checked]), poison


def _vouched_table(
    wires: list[_WireText], consumed: Consumed, ingest_time: datetime
) -> tuple[pa.Table, list[int]]:
    """Bronze rows for the messages whose text the fast path vouches for, and the positions of the
    others. Raises an Arrow error for a value no column can hold."""
    text = [pa.array(map(getter, wires), type=kind, size=len(wires)) for getter, kind in _WIRE_COLUMNS]
    exchange, product_id, _trade_id, price, size, side, event_time, receive_time, _sequence, source, raw = (
        text
    )
    vouched = _all(
        pc.match_substring_regex(price, POSITIVE_PLAIN_DECIMAL),
        pc.match_substring_regex(size, POSITIVE_PLAIN_DECIMAL),
        pc.match_substring_regex(event_time, CANONICAL_TIME),
        pc.match_substring_regex(receive_time, CANONICAL_TIME),
        pc.is_in(side, value_set=_SIDES),
        pc.is_in(source, value_set=_SOURCES),
        pc.not_equal(exchange, ""),
        pc.not_equal(product_id, ""),
        pc.not_equal(raw, ""),
    )
    columns = [
        *text,
        pa.array(consumed.topics, ARROW_SCHEMA.field("kafka_topic").type),
        pa.array(consumed.partitions, pa.int32()),
        pa.array(consumed.offsets, pa.int64()),
        pa.array(consumed.timestamps_ms, pa.int64()).cast(pa.timestamp("ms", tz="UTC")).cast(TIMESTAMP),
    ]
    unsure: list[int] = []
    if vouched.false_count:
        unsure = pc.indices_nonzero(pc.invert(vouched)).to_pylist()
        columns = [column.filter(vouched) for column in columns]
    # only vouched times are parsed: other text never reaches Arrow's (more lenient) parser
    for i in (COLUMNS.index("event_time"), COLUMNS.index("receive_time")):
        columns[i] = pc.cast(columns[i], TIMESTAMP)
    columns.append(pa.repeat(pa.scalar(ingest_time, TIMESTAMP), len(columns[0])))
    return pa.Table.from_arrays(columns, schema=ARROW_SCHEMA), unsure


def _all(*conditions: pa.BooleanArray) -> pa.BooleanArray:
    result = conditions[0]
    for condition in conditions[1:]:
        result = pc.and_(result, condition)
    return result


Decode = Callable[[Consumed, datetime], tuple[pa.Table, list[Poison]]]


@dataclass(frozen=True)
class RowFormat:
    """How one stream's Kafka messages become rows of its bronze table: what makes the one writer
    serve ``bronze.trades`` and ``bronze.reference_prices`` alike. The table must carry the Kafka
    lineage columns (``kafka_topic``, ``kafka_partition``, ``kafka_offset``, ``kafka_timestamp``),
    ``event_time`` and ``ingest_time``: the offset bookkeeping and the reset check read them."""

    table: TableDef
    decode: Decode  # rows of the valid messages and a Poison (with its reason) for each other one
    is_row: Callable[[bytes | None], bool]  # would this message value become a row?
    arrow_schema: pa.Schema
    sort_keys: list[tuple[str, str]]


def row_format(table: TableDef, decode: Decode, is_row: Callable[[bytes | None], bool]) -> RowFormat:
    schema = table.schema
    sort_keys = [(schema.find_column_name(f.source_id), "ascending") for f in table.sort_order.fields]
    return RowFormat(table, decode, is_row, schema.as_arrow(), sort_keys)


def parses(from_wire: Callable[[bytes], object]) -> Callable[[bytes | None], bool]:
    """``RowFormat.is_row`` for a stream whose messages ``from_wire`` reads (it raises on a bad one)."""

    def is_row(value: bytes | None) -> bool:
        try:
            from_wire(value or b"")
        except (InvalidTrade, ValueError, TypeError):
            return False
        return True

    return is_row


TRADE_ROWS = row_format(BRONZE_TRADES, decode_columns, parses(Trade.from_wire))


@dataclass
class Batch:
    """Rows (as Arrow tables) and dead letters waiting for one bronze append, and the offsets they cover."""

    format: RowFormat = TRADE_ROWS
    tables: list[pa.Table] = field(default_factory=list)
    poison: list[Poison] = field(default_factory=list)
    next_offsets: Offsets = field(default_factory=dict)
    first_offsets: Offsets = field(default_factory=dict)  # of the first message per partition
    opened_at: float | None = None  # monotonic time of the first message
    rows: int = 0

    def add(self, consumed: Consumed, ingest_time: datetime, now: float) -> list[Poison]:
        """Decode and keep ``consumed``; returns the messages that are not trades (kept too)."""
        if not consumed.values:
            return []
        if self.opened_at is None:
            self.opened_at = now
        # a partition is consumed in offset order: its last message here is its newest
        keys = list(zip(consumed.topics, consumed.partitions, strict=True))
        for tp, offset in dict(zip(keys, consumed.offsets, strict=True)).items():
            self.next_offsets[tp] = offset + 1
        for tp, offset in dict(zip(reversed(keys), reversed(consumed.offsets), strict=True)).items():
            self.first_offsets[tp] = min(offset, self.first_offsets.get(tp, offset))
        table, poison = self.format.decode(consumed, ingest_time)
        if table.num_rows:
            self.tables.append(table)
            self.rows += table.num_rows
        self.poison += poison
        return poison

    def __len__(self) -> int:
        return self.rows + len(self.poison)

    def due(self, flush_rows: int, flush_seconds: float, now: float) -> bool:
        if not self.next_offsets:
            return False
        return len(self) >= flush_rows or (
            self.opened_at is not None and now - self.opened_at >= flush_seconds
        )

    def without_covered(self, recorded: Mapping[TopicPartition, int]) -> Batch:
        """The part of this batch the table does not hold yet (another writer may have appended some)."""
        # only partitions where the table reaches into this batch need their rows filtered
        covered = {
            tp: n for tp, n in recorded.items() if tp in self.first_offsets and self.first_offsets[tp] < n
        }
        tables = [t.filter(_fresh(t, covered)) for t in self.tables] if covered else list(self.tables)
        return Batch(
            format=self.format,
            tables=[t for t in tables if t.num_rows],
            poison=[x for x in self.poison if x.message.offset >= covered.get(x.origin[:2], 0)],
            next_offsets={tp: n for tp, n in self.next_offsets.items() if n > recorded.get(tp, 0)},
            first_offsets={tp: max(n, recorded.get(tp, 0)) for tp, n in self.first_offsets.items()},
            opened_at=self.opened_at,
            rows=sum(t.num_rows for t in tables),
        )

    def to_arrow(self) -> pa.Table:
        """The rows in the table's declared sort order (pyiceberg appends data as given)."""
        if not self.tables:
            return self.format.arrow_schema.empty_table()
        return pa.concat_tables(self.tables).sort_by(self.format.sort_keys)

    def newest_event_time(self) -> datetime | None:
        return max((pc.max(t["event_time"]).as_py() for t in self.tables), default=None)


def _fresh(table: pa.Table, covered: Mapping[TopicPartition, int]) -> pa.BooleanArray:
    """Rows at or past the recorded next offset of their partition."""
    stale = None
    for (topic, partition), n in covered.items():
        hit = _all(
            pc.equal(table["kafka_topic"], topic),
            pc.equal(table["kafka_partition"], partition),
            pc.less(table["kafka_offset"], n),
        )
        stale = hit if stale is None else pc.or_(stale, hit)
    return pc.invert(stale)


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


def offsets_in_rows(topics: Sequence[str], partitions: Sequence[int], offsets: Sequence[int]) -> Offsets:
    """The next offset per (topic, partition) that rows with these Kafka coordinates cover: what the
    data itself says when no snapshot summary carries the offsets any more."""
    found: Offsets = {}
    for tp, offset in zip(zip(topics, partitions, strict=True), offsets, strict=True):
        if offset + 1 > found.get(tp, 0):
            found[tp] = offset + 1
    return found


def recorded_offsets(summaries_newest_first: Iterable[Mapping[str, str]]) -> Offsets:
    """The table's offsets: from the newest snapshot summary that carries them (empty if none)."""
    for summary in summaries_newest_first:
        text = summary.get(OFFSETS_PROPERTY)
        if text:
            return decode_offsets(text)
    return {}
