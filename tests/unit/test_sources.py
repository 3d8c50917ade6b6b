"""Synthetic frames (deterministic, Coinbase format, exact decimals) and the replay file format."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import zstandard

from ingestion.coinbase_parser import Heartbeat, parse_frame
from ingestion.events import Trade
from ingestion.sources import RecordingWriter, first_trade_id, paced_delay, read_recording, synthetic_frames

START = datetime(2024, 5, 1, tzinfo=UTC)
PRODUCTS = ("BTC-USD", "DOGE-USD")


def take(n: int, seed: int = 1) -> list[tuple[datetime, bytes]]:
    return list(itertools.islice(synthetic_frames(PRODUCTS, seed, START, 100.0), n))


def test_synthetic_is_deterministic_per_seed() -> None:
    assert take(50, seed=1) == take(50, seed=1)
    assert take(50, seed=1) != take(50, seed=2)


def test_synthetic_frames_parse_as_coinbase_frames() -> None:
    parsed = [parse_frame(f, START, "synthetic", frozenset(PRODUCTS), 65536) for _, f in take(400)]
    trades = [p for p in parsed if isinstance(p, Trade)]
    beats = [p for p in parsed if isinstance(p, Heartbeat)]
    assert len(trades) > 300 and len(beats) >= 2 * 3  # one per product per synthetic second
    assert all(t.source == "synthetic" for t in trades)
    for product, tick in (("BTC-USD", Decimal("0.01")), ("DOGE-USD", Decimal("0.00001"))):
        prices = [t.price for t in trades if t.product_id == product]
        assert all(p > 0 and p % tick == 0 for p in prices)
        assert len(set(prices)) > 1  # it walks
    for product in PRODUCTS:  # consecutive per product, as on Coinbase
        ids = [t.trade_id for t in trades if t.product_id == product]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
    # heartbeats name the last trade id of their product
    last = {}
    for p in parsed:
        if isinstance(p, Trade):
            last[p.product_id] = p.trade_id
        elif isinstance(p, Heartbeat) and p.product_id in last:
            assert p.last_trade_id == last[p.product_id]


def test_synthetic_trade_ids_start_at_the_run_start_in_microseconds() -> None:
    later = START + timedelta(seconds=1)
    first = [orjson.loads(f) for _, f in itertools.islice(synthetic_frames(PRODUCTS, 1, START, 100.0), 400)]
    second = [orjson.loads(f) for _, f in itertools.islice(synthetic_frames(PRODUCTS, 1, later, 100.0), 4)]
    ids = [f["trade_id"] for f in first if f["type"] == "match"]
    assert min(ids) == first_trade_id(START) == 1_714_521_600_000_000
    # the same seed a second later: every id above every id of the first run (~200 per product)
    assert min(f["trade_id"] for f in second if f["type"] == "match") > max(ids)


def test_synthetic_times_follow_the_rate() -> None:
    frames = take(201)
    assert frames[-1][0] - frames[0][0] >= timedelta(seconds=1.9)


def test_replay_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "rec.ndjson.zst"
    writer = RecordingWriter(path)
    frames = [(START + timedelta(seconds=i), f'{{"type":"heartbeat","n":{i}}}') for i in range(3)]
    for t, f in frames:
        writer.write(f.encode(), t)
    writer.close()
    assert list(read_recording(path)) == [(t, f, None) for t, f in frames]
    # the format is plain zstd NDJSON, readable by any tool
    lines = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes()).splitlines()
    assert orjson.loads(lines[0]) == {"receive_time": "2024-05-01T00:00:00.000000Z", "frame": frames[0][1]}


def test_malformed_replay_lines_are_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson.zst"
    good = orjson.dumps({"receive_time": "2024-05-01T00:00:00Z", "frame": "{}"})
    path.write_bytes(zstandard.ZstdCompressor().compress(b"garbage\n" + good + b'\n{"frame": 5}\n'))
    items = list(read_recording(path))
    assert items[0][0] is None and items[0][1] == b"garbage" and "line 1 malformed" in items[0][2]
    assert items[1] == (START, "{}", None)
    assert items[2][0] is None and "line 3" in items[2][2]


def test_paced_delay() -> None:
    later = START + timedelta(seconds=10)
    assert paced_delay(START, later, 0.0, 0.0, speed=1.0) == 10.0
    assert paced_delay(START, later, 0.0, 0.0, speed=10.0) == 1.0
    assert paced_delay(START, later, 0.0, 4.0, speed=1.0) == 6.0
    assert paced_delay(START, later, 0.0, 0.0, speed=0) == 0.0
    assert paced_delay(START, START, 0.0, 5.0, speed=1.0) == 0.0
