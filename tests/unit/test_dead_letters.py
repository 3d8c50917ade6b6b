"""Dead-letter headers carry the reason, stage, source and origin, and read back as written."""

from __future__ import annotations

from datetime import UTC, datetime

from ingestion.dead_letters import dead_letter_headers, read_dead_letter_headers


def test_headers_round_trip() -> None:
    headers = dead_letter_headers(
        "not JSON",
        "bronze",
        source="ws",
        origin=("crypto.trades", 2, 41),
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert read_dead_letter_headers(headers) == {
        "dlq.reason": "not JSON",
        "dlq.stage": "bronze",
        "dlq.source": "ws",
        "dlq.time": "2026-01-01T00:00:00.000000Z",
        "dlq.origin": "crypto.trades/2/41",
    }


def test_long_reasons_are_cut_and_foreign_headers_ignored() -> None:
    headers = [*dead_letter_headers("x" * 5000, "ingest"), ("traceparent", b"00-abc")]
    read = read_dead_letter_headers(headers)
    assert len(read["dlq.reason"]) == 500
    assert "traceparent" not in read


def test_an_oversized_value_becomes_a_prefix_with_its_size_and_digest() -> None:
    import hashlib

    from ingestion.dead_letters import ENVELOPE_BYTES, bounded_dead_letter

    big = b"x" * 3_000_000
    value, headers = bounded_dead_letter(big, "oversized frame", "ingest", "replay", 1_000_000)
    read = read_dead_letter_headers(headers)
    assert value == big[: 1_000_000 - ENVELOPE_BYTES]
    assert read["dlq.size"] == "3000000" and read["dlq.truncated"] == str(len(value))
    assert read["dlq.sha256"] == hashlib.sha256(big).hexdigest()
    small, small_headers = bounded_dead_letter(b"{bad", "not JSON", "ingest", None, 1_000_000)
    assert small == b"{bad" and "dlq.size" not in read_dead_letter_headers(small_headers)
    assert bounded_dead_letter(None, "tombstone", "bronze", None, 1_000_000)[0] is None


def test_a_refused_frame_still_names_its_trade() -> None:
    from ingestion.dead_letters import dead_lettered_trade, named_trade

    bad_match = b'{"type":"match","trade_id":11,"product_id":"BTC-USD","price":"-1"}'
    assert named_trade(bad_match) == ("BTC-USD", 11)
    assert named_trade(b'{"trade_id":12,"price":"x"}') == (None, 12)  # a REST element
    for garbage in (
        b"not json",
        b"[1,2]",
        b'{"trade_id":true}',
        b'{"trade_id":"11"}',
        b"{" + b" " * (1 << 20),
    ):
        assert named_trade(garbage) is None
    assert dead_lettered_trade(b"coinbase:BTC-USD", bad_match) == ("coinbase", "BTC-USD", 11)
    assert dead_lettered_trade(b"coinbase:BTC-USD", b'{"trade_id":12}') == ("coinbase", "BTC-USD", 12)
    # no key, a key naming another product, or no trade id: not attributable
    assert dead_lettered_trade(None, bad_match) is None
    assert dead_lettered_trade(b"coinbase:ETH-USD", bad_match) is None
    assert dead_lettered_trade(b"coinbase:BTC-USD", b"garbage") is None
