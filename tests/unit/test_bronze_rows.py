"""Pure bronze-writer logic: message -> row, batching, poison handling and offset bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa

from infrastructure.tables import BRONZE_TRADES
from ingestion.events import Trade
from processing.bronze.rows import (
    ARROW_SCHEMA,
    OFFSETS_PROPERTY,
    Batch,
    Consumed,
    Message,
    decode_offsets,
    encode_offsets,
    merge_offsets,
    recorded_offsets,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def trade(trade_id: int, product: str = "BTC-USD") -> Trade:
    return Trade(
        exchange="coinbase",
        product_id=product,
        trade_id=trade_id,
        price=Decimal("91234.56"),
        size=Decimal("0.00000001"),
        side="buy",
        event_time=datetime(2026, 11, 22, 11, 59, 59, 123456, tzinfo=UTC),
        receive_time=datetime(2026, 11, 22, 11, 59, 59, 200000, tzinfo=UTC),
        sequence=trade_id * 10,
        source="synthetic",
        raw='{"type":"match"}',
    )


def message(offset: int, value: bytes | None, partition: int = 0) -> Message:
    return Message("t", partition, offset, 1_700_000_000_000 + offset, b"coinbase:BTC-USD", value)


def test_rows_carry_kafka_lineage_and_exact_decimal_strings() -> None:
    batch = Batch()
    assert batch.add(Consumed.of([message(7, trade(1).to_wire())]), NOW, now=0.0) == []
    table = batch.to_arrow()
    assert table.schema == ARROW_SCHEMA
    row = table.to_pylist()[0]
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == ("t", 0, 7)
    assert row["price"] == "91234.56" and row["size"] == "0.00000001"
    assert row["ingest_time"] == NOW
    assert row["kafka_timestamp"] == datetime.fromtimestamp(1_700_000_000.007, UTC)
    assert batch.next_offsets == {("t", 0): 8}


def test_arrow_schema_is_the_table_contract() -> None:
    assert ARROW_SCHEMA.names == [f.name for f in BRONZE_TRADES.schema.fields]
    assert Batch().to_arrow().num_rows == 0


def test_poison_is_kept_with_its_reason_and_its_offset_is_covered() -> None:
    batch = Batch()
    poison, tomb = batch.add(Consumed.of([message(3, b"{not json"), message(4, None)]), NOW, now=0.0)
    assert poison.reason.startswith("not JSON")
    assert "tombstone" in tomb.reason
    assert poison.origin == ("t", 0, 3)
    assert batch.rows == 0 and batch.to_arrow().num_rows == 0 and len(batch.poison) == 2
    assert batch.next_offsets == {("t", 0): 5}


def test_flush_is_due_on_rows_or_age() -> None:
    batch = Batch()
    assert not batch.due(2, 5.0, now=100.0)
    batch.add(Consumed.of([message(0, trade(1).to_wire())]), NOW, now=100.0)
    assert not batch.due(2, 5.0, now=101.0)
    assert batch.due(2, 5.0, now=105.0)
    batch.add(Consumed.of([message(1, trade(2).to_wire())]), NOW, now=101.0)
    assert batch.due(2, 5.0, now=101.0)


def test_without_covered_drops_what_the_table_already_holds() -> None:
    batch = Batch()
    for offset in range(10):
        batch.add(Consumed.of([message(offset, trade(offset).to_wire(), partition=0)]), NOW, now=0.0)
        batch.add(
            Consumed.of([message(offset, trade(offset, "ETH-USD").to_wire(), partition=1)]), NOW, now=0.0
        )
    batch.add(Consumed.of([message(10, b"[]", partition=0)]), NOW, now=0.0)
    pending = batch.without_covered({("t", 0): 6, ("t", 1): 10, ("other", 0): 99})
    rows = pending.to_arrow()
    assert sorted(rows["kafka_offset"].to_pylist()) == [6, 7, 8, 9] and pending.rows == 4
    assert set(rows["kafka_partition"].to_pylist()) == {0}
    assert [p.origin for p in pending.poison] == [("t", 0, 10)]
    assert pending.next_offsets == {("t", 0): 11}
    assert not batch.without_covered({("t", 0): 11, ("t", 1): 10}).next_offsets
    # a table that does not reach into the batch leaves its rows as they are (no filtering)
    untouched = batch.without_covered({("t", 0): 0, ("other", 0): 5})
    assert untouched.tables == batch.tables and untouched.rows == 20 and len(untouched.poison) == 1


def test_offsets_round_trip_and_only_move_forward() -> None:
    offsets = {("crypto.trades", 0): 5, ("crypto.trades", 3): 12, ("a/b", 1): 2}
    assert decode_offsets(encode_offsets(offsets)) == offsets
    assert merge_offsets({("t", 0): 10, ("t", 1): 3}, {("t", 0): 7, ("t", 2): 1}) == {
        ("t", 0): 10,
        ("t", 1): 3,
        ("t", 2): 1,
    }


def test_recorded_offsets_come_from_the_newest_snapshot_that_has_them() -> None:
    summaries = [
        {"operation": "replace"},  # e.g. a compaction on top: no offsets
        {OFFSETS_PROPERTY: encode_offsets({("t", 0): 20})},
        {OFFSETS_PROPERTY: encode_offsets({("t", 0): 10})},
    ]
    assert recorded_offsets(summaries) == {("t", 0): 20}
    assert recorded_offsets([]) == {}


def test_arrow_table_types_match_timestamptz() -> None:
    batch = Batch()
    batch.add(Consumed.of([message(0, trade(1).to_wire())]), NOW, now=0.0)
    assert batch.to_arrow().schema.field("event_time").type == pa.timestamp("us", tz="UTC")


def test_arrow_batches_follow_the_table_sort_order() -> None:
    batch = Batch()
    for offset, (trade_id, product) in enumerate(
        [(3, "ETH-USD"), (1, "BTC-USD"), (2, "ETH-USD"), (0, "BTC-USD")]
    ):
        batch.add(Consumed.of([message(offset, trade(trade_id, product).to_wire())]), NOW, now=0.0)
    rows = batch.to_arrow().to_pylist()
    assert [r["product_id"] for r in rows] == ["BTC-USD", "BTC-USD", "ETH-USD", "ETH-USD"]


def test_offsets_in_rows_are_the_next_offset_per_partition() -> None:
    from processing.bronze.rows import offsets_in_rows

    found = offsets_in_rows(["t", "t", "t", "u"], [0, 0, 1, 0], [4, 9, 0, 2])
    assert found == {("t", 0): 10, ("t", 1): 1, ("u", 0): 3}
    assert offsets_in_rows([], [], []) == {}
