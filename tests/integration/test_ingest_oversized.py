"""Dead letters of any size: 1 MB and 10 MB frames in the middle of a replay go to the DLQ as a
bounded prefix with their size and sha256, and every later frame is still read and published."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from ingestion.dead_letters import read_dead_letter_headers
from ingestion.sources import RecordingWriter
from tests.fixtures.ingest import ingest_settings, read_topic, trade_ids
from tests.integration.test_ingest_cli import run_cli

MATCH = (Path(__file__).parents[1] / "fixtures" / "coinbase_frames" / "match.json").read_bytes()


def frame(trade_id: int) -> bytes:
    obj = orjson.loads(MATCH) | {"trade_id": trade_id, "sequence": 1000 + trade_id}
    return orjson.dumps(obj)


def test_oversized_frames_are_dead_lettered_and_the_replay_goes_on(broker, tmp_path: Path) -> None:
    settings = ingest_settings(broker, products=("BTC-USD",))
    big = {31: 1 << 20, 61: 10 << 20}  # after trade 30 and after trade 60
    oversized: list[bytes] = []
    recording = tmp_path / "big.ndjson.zst"
    writer = RecordingWriter(recording)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    for i in range(1, 101):
        if i in big:
            padded = orjson.dumps(orjson.loads(frame(0)) | {"pad": "x" * big[i]})
            oversized.append(padded)
            writer.write(padded, start + timedelta(milliseconds=i))
        writer.write(frame(i), start + timedelta(milliseconds=i))
    writer.close()

    result = run_cli(["ingest", "--source", "replay", "--file", str(recording), "--speed", "0",
                      "--no-metrics"], settings, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dead_letters=2" in result.stdout
    found = trade_ids(read_topic(broker.bootstrap, settings.kafka.trades_topic))
    assert sorted(found["BTC-USD"]) == list(range(1, 101))  # every frame after the big ones too
    dead = read_topic(broker.bootstrap, settings.kafka.dlq_topic)
    assert len(dead) == 2
    for message, original in zip(dead, oversized, strict=True):
        headers = read_dead_letter_headers(message.headers())
        assert "oversized frame" in headers["dlq.reason"]
        assert headers["dlq.size"] == str(len(original))
        assert headers["dlq.sha256"] == hashlib.sha256(original).hexdigest()
        assert original.startswith(message.value())
        assert len(message.value()) == int(headers["dlq.truncated"]) < settings.kafka.max_message_bytes
