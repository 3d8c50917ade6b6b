"""The columnar fast path of the bronze writer gives exactly what the checked per-message path gives:
the same rows (decimal text byte for byte), the same poison with the same reasons, in topic order."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.events import WIRE_FIELDS, format_decimal
from orchestration.local_stack import synthetic_trade
from processing.bronze import rows as rows_module
from processing.bronze.rows import (
    POSITIVE_PLAIN_DECIMAL,
    Batch,
    Consumed,
    Message,
    _WireText,
    decode_checked,
    decode_columns,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GOOD = synthetic_trade(7).to_wire()


def messages(values: list[bytes | None]) -> list[Message]:
    return [Message("t", 0, i, 1_700_000_000_000 + i, b"coinbase:BTC-USD", v) for i, v in enumerate(values)]


def consumed(values: list[bytes | None]) -> Consumed:
    return Consumed.of(messages(values))


def with_field(name: str, text: str) -> bytes:
    """GOOD with one field's JSON value replaced by ``text`` (raw JSON)."""
    head, _, tail = GOOD.partition(f'"{name}":'.encode())
    rest = tail[tail.index(b",") :] if name != "raw" else b"}"
    return head + f'"{name}":{text}'.encode() + rest


def both_paths(values: list[bytes | None]) -> tuple[pa.Table, list[tuple]]:
    """Decode with both paths, assert they agree, return the rows and (offset, reason) of the poison."""
    fast, fast_poison = decode_columns(consumed(values), NOW)
    checked, checked_poison = decode_checked(messages(values), NOW)
    assert fast.schema == checked.schema
    by_offset = [("kafka_offset", "ascending")]
    assert fast.sort_by(by_offset).equals(checked.sort_by(by_offset))
    assert fast_poison == checked_poison
    return fast, [(p.message.offset, p.reason) for p in fast_poison]


def test_fast_decoder_reads_every_wire_field_in_order() -> None:
    assert _WireText.__struct_fields__ == WIRE_FIELDS


def test_a_clean_batch_is_the_same_on_both_paths(monkeypatch) -> None:
    values = [synthetic_trade(i).to_wire() for i in range(500)]
    rows, poison = both_paths(values)
    assert rows.num_rows == 500 and poison == []

    def no_checked_path(*_args):
        raise AssertionError("a clean batch took the checked path")

    monkeypatch.setattr(rows_module, "decode_checked", no_checked_path)
    assert decode_columns(consumed(values), NOW)[0].equals(rows)


def test_poison_in_the_middle_is_dead_lettered_in_order_and_the_rest_is_written() -> None:
    good = [synthetic_trade(i).to_wire() for i in range(20)]
    bad = {
        3: b"{not json",
        5: None,
        8: with_field("price", '"-1.5"'),
        9: with_field("price", "1.5"),  # a float: inexact already, refused
        11: b'{"exchange":"coinbase"}',
        12: with_field("event_time", '"2026-11-22T00:00:00.000000"'),  # naive
        14: with_field("side", '"hold"'),
        15: GOOD + GOOD,
        16: with_field("event_time", '"2026-02-30T00:00:00.000000Z"'),  # canonical shape, no such day
        17: b'{"exchange":"\xff"}',
        18: with_field("trade_id", str(2**63)),  # beyond the 64-bit column
    }
    values = [bad.get(i, v) for i, v in enumerate(good)]
    rows, poison = both_paths(values)
    assert sorted(rows["kafka_offset"].to_pylist()) == [i for i in range(20) if i not in bad]
    assert [offset for offset, _ in poison] == sorted(bad)
    reasons = dict(poison)
    assert reasons[3].startswith("not JSON") and "tombstone" in reasons[5]
    assert "non-positive price" in reasons[8] and "price must be a decimal string" in reasons[9]
    assert reasons[11].startswith("missing fields") and "no timezone" in reasons[12]
    assert reasons[15].startswith("not JSON") and "not an ISO 8601 time" in reasons[16]
    assert reasons[17].startswith("not JSON") and "64-bit" in reasons[18]


def test_valid_but_unusual_text_takes_the_checked_path_and_is_stored_as_before() -> None:
    values = [
        with_field("price", '"1E-8"'),
        with_field("size", '"007.50"'),
        with_field("event_time", '"2026-11-22T01:00:00+01:00"'),
        with_field("receive_time", '"2026-11-22T00:00:00Z"'),
        with_field("sequence", "null"),
    ]
    rows, poison = both_paths(values)
    assert poison == [] and rows.num_rows == 5
    by_offset = {r["kafka_offset"]: r for r in rows.to_pylist()}
    assert by_offset[0]["price"] == "0.00000001"
    assert by_offset[1]["size"] == "7.50"
    assert by_offset[2]["event_time"] == datetime(2026, 11, 22, tzinfo=UTC)
    assert by_offset[4]["sequence"] is None


def test_decimals_stay_exact_to_the_last_digit() -> None:
    tiny, huge = "0.000000000000000001", "123456789012345678901234567890.123456789012345678"
    values = [with_field("price", f'"{huge}"') for _ in range(3)] + [with_field("size", f'"{tiny}"')]
    rows, poison = both_paths(values)
    assert poison == []
    assert rows["price"].to_pylist()[:3] == [huge] * 3
    assert rows["size"].to_pylist()[3] == tiny


def test_plain_decimal_text_is_its_own_canonical_form() -> None:
    """Why the fast path may store the wire text as is: for text it vouches for, the checked path's
    format_decimal(Decimal(text)) gives the same text back."""
    rng = random.Random(3)
    for _ in range(2_000):
        whole = rng.choice(["0", str(rng.randrange(1, 10 ** rng.randrange(1, 40)))])
        fraction = "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 30)))
        text = f"{whole}.{fraction}" if fraction else whole
        assert format_decimal(Decimal(text)) == text


def test_batches_of_many_messages_keep_offsets_and_poison() -> None:
    batch = Batch()
    values = [synthetic_trade(i).to_wire() for i in range(100)]
    values[40] = b"[]"
    poison = batch.add(consumed(values), NOW, now=0.0)
    assert [p.origin for p in poison] == [("t", 0, 40)]
    assert len(batch) == 100 and batch.rows == 99
    assert batch.next_offsets == {("t", 0): 100}
    assert batch.newest_event_time() == synthetic_trade(99).event_time


def test_the_fast_path_vouches_only_for_positive_plain_decimals() -> None:
    vouched = [
        "1",
        "10",
        "10.00",
        "0.5",
        "0.000000000000000001",
        "91234.56",
        "123456789012345678901234567890.1",
    ]
    refused = [
        "0",
        "0.0",
        "0.",
        ".5",
        "1.",
        "00.5",
        "01",
        "-1",
        "+1",
        "1e5",
        "1E-8",
        " 1",
        "1 ",
        "",
        "NaN",
        "1_0",
    ]
    matches = pc.match_substring_regex(pa.array(vouched + refused), POSITIVE_PLAIN_DECIMAL).to_pylist()
    assert matches == [True] * len(vouched) + [False] * len(refused)
