"""The ingestion commands as users run them (subprocesses): SIGTERM flushes, metrics are served,
``--source auto`` falls back to synthetic, record -> replay round trip, REST backfill by time range.
One test reads the topic with Debian's ``kcat``, a client independent of ours."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import zstandard

from infrastructure.services import free_port
from infrastructure.settings import Settings
from ingestion.dead_letters import read_dead_letter_headers
from ingestion.sources import read_recording
from tests.fixtures.coinbase import FakeCoinbase
from tests.fixtures.ingest import ingest_settings, read_topic, trade_ids, wait_until
from tests.fixtures.services import Broker

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


def env_for(settings: Settings) -> dict[str, str]:
    """The process environment that makes the CLI use ``settings`` (the variables users set)."""
    s = settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env |= {
        "LAKEHOUSE_PRODUCTS": ",".join(s.products),
        "LAKEHOUSE_DATA_DIR": str(s.data_dir),
        "LAKEHOUSE_KAFKA__BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers,
        "LAKEHOUSE_KAFKA__TRADES_TOPIC": s.kafka.trades_topic,
        "LAKEHOUSE_KAFKA__DLQ_TOPIC": s.kafka.dlq_topic,
        "LAKEHOUSE_KAFKA__PARTITIONS": str(s.kafka.partitions),
        "LAKEHOUSE_KAFKA__PRODUCER_LINGER_MS": str(s.kafka.producer_linger_ms),
        "LAKEHOUSE_COINBASE__WS_URL": s.coinbase.ws_url,
        "LAKEHOUSE_COINBASE__REST_URL": s.coinbase.rest_url,
        "LAKEHOUSE_COINBASE__SUBSCRIBE_TIMEOUT_S": str(s.coinbase.subscribe_timeout_s),
        "LAKEHOUSE_COINBASE__REST_PAGE_LIMIT": str(s.coinbase.rest_page_limit),
        "LAKEHOUSE_METRICS__PRODUCER_PORT": str(s.metrics.producer_port),
    }
    return env


@contextmanager
def cli_process(args: list[str], settings: Settings, cwd: Path) -> Iterator[subprocess.Popen]:
    """A long-running ``lakehouse`` command; killed at the end if the test left it running."""
    proc = subprocess.Popen([LAKEHOUSE, *args], env=env_for(settings), cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_cli(
    args: list[str], settings: Settings, cwd: Path, timeout_s: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LAKEHOUSE, *args], env=env_for(settings), cwd=cwd, capture_output=True, text=True, timeout=timeout_s
    )


def test_sigterm_flushes_everything_and_metrics_are_served(
    broker: Broker, fake_coinbase: FakeCoinbase, tmp_path: Path
) -> None:
    fake = fake_coinbase
    # a long linger keeps sent trades in the local queue: only the shutdown flush can deliver them
    settings = ingest_settings(broker, fake, kafka={"producer_linger_ms": 5000})
    with cli_process(["ingest", "--source", "coinbase"], settings, tmp_path) as proc:
        fake.wait_for_subscriptions(1, timeout_s=60)
        fake.trade("BTC-USD", 200)
        fake.trade("ETH-USD", 100)
        metrics_url = f"http://127.0.0.1:{settings.metrics.producer_port}/metrics"

        def received_all() -> bool:
            with urllib.request.urlopen(metrics_url, timeout=5) as resp:
                text = resp.read().decode()
            line = [
                x for x in text.splitlines() if x.startswith('coinbase_messages_received_total{type="match"}')
            ]
            return bool(line) and float(line[0].split()[-1]) >= 300

        wait_until(received_all, 30, "300 matches counted by the metrics endpoint")
        with urllib.request.urlopen(metrics_url, timeout=5) as resp:
            text = resp.read().decode()
        for name in ("coinbase_websocket_connected 1.0", "coinbase_message_latency_seconds_bucket",
                     "coinbase_producer_queue_depth", "coinbase_reconnects_total"):  # fmt: skip
            assert name in text
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "acked=300" in out and "unsent=0" in out, out
    found = trade_ids(read_topic(broker.bootstrap, settings.kafka.trades_topic))
    assert {p: sorted(ids) for p, ids in found.items()} == {p: fake.trade_ids(p) for p in fake.products}


@pytest.mark.skipif(shutil.which("kcat") is None, reason="Debian's kcat is installed by `make setup-test`")
def test_auto_falls_back_to_synthetic_and_kcat_reads_the_topic(broker: Broker, tmp_path: Path) -> None:
    nobody = f"ws://127.0.0.1:{free_port()}/"  # nothing listens here: the live feed is unreachable
    settings = ingest_settings(broker, coinbase={"ws_url": nobody, "subscribe_timeout_s": 1.0})
    result = run_cli(
        ["ingest", "--source", "auto", "--speed", "0", "--max-messages", "500", "--no-metrics"],
        settings,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "live Coinbase feed unreachable" in result.stderr and "SYNTHETIC" in result.stderr
    assert "source=synthetic frames=500" in result.stdout
    trades = int(result.stdout.split(" trades=")[1].split()[0])
    kcat = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-t", settings.kafka.trades_topic, "-C", "-e", "-q",
         "-f", "%k\t%s\n"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert kcat.returncode == 0, kcat.stderr
    lines = kcat.stdout.splitlines()
    assert len(lines) == trades > 0
    for line in lines:
        key, value = line.split("\t", 1)
        obj = orjson.loads(value)
        # fake data is never mistaken for real data: its own venue, in the key and the trade
        assert key == f"synthetic:{obj['product_id']}" and obj["exchange"] == "synthetic"
        assert obj["source"] == "synthetic"
        assert isinstance(obj["price"], str) and isinstance(obj["size"], str)


def test_record_then_replay(broker: Broker, fake_coinbase: FakeCoinbase, tmp_path: Path) -> None:
    fake = fake_coinbase
    fake.set_heartbeats(False)  # keep the recording to the trades we make
    settings = ingest_settings(broker, fake)
    recording = tmp_path / "session.ndjson.zst"
    with cli_process(
        ["record", "--output", str(recording), "--max-messages", "31"], settings, tmp_path
    ) as proc:
        fake.wait_for_subscriptions(1, timeout_s=60)
        fake.trade("BTC-USD", 20)
        fake.trade("ETH-USD", 10)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "recorded 31 frames" in out
    items = list(read_recording(recording))
    assert orjson.loads(items[0][1])["type"] == "subscriptions"
    # append a line that is not a replay line: it must be dead-lettered, not crash the replay
    with recording.open("ab") as f:
        f.write(zstandard.ZstdCompressor().compress(b"half a line\n"))

    result = run_cli(["ingest", "--source", "replay", "--file", str(recording), "--speed", "100",
                      "--no-metrics"], settings, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    messages = read_topic(broker.bootstrap, settings.kafka.trades_topic)
    found = trade_ids(messages)
    assert {p: sorted(ids) for p, ids in found.items()} == {p: fake.trade_ids(p) for p in fake.products}
    recorded_times = {t for t, _, _ in items}
    for m in messages:
        obj = orjson.loads(m.value())
        assert obj["source"] == "replay"
        assert datetime.fromisoformat(obj["receive_time"]) in recorded_times  # the recorded receive time
    dead = read_topic(broker.bootstrap, settings.kafka.dlq_topic)
    assert [m.value() for m in dead] == [b"half a line"]
    headers = read_dead_letter_headers(dead[0].headers())
    assert "malformed" in headers["dlq.reason"] and headers["dlq.source"] == "replay"


def test_backfill_command_pages_a_time_range_within_the_rate_limit(
    broker: Broker, fake_coinbase: FakeCoinbase, tmp_path: Path
) -> None:
    fake = fake_coinbase
    fake.trade("BTC-USD", 10)
    start = datetime.now(UTC)
    time.sleep(0.01)
    ids = fake.trade("BTC-USD", 1500)
    time.sleep(0.01)
    end = datetime.now(UTC)
    fake.trade("BTC-USD", 10)
    # pages of 100: 16 requests, more than the 10/s the server allows
    settings = ingest_settings(broker, fake, coinbase={"rest_page_limit": 100})
    iso = "%Y-%m-%dT%H:%M:%S.%fZ"
    result = run_cli(["backfill", "--product", "btc-usd", "--start", start.strftime(iso),
                      "--end", end.strftime(iso)], settings, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "published=1500 acked=1500 unsent=0" in result.stdout
    messages = read_topic(broker.bootstrap, settings.kafka.trades_topic)
    assert sorted(trade_ids(messages)["BTC-USD"]) == ids
    assert {orjson.loads(m.value())["source"] for m in messages} == {"backfill"}
    times = fake.rest_request_times
    assert len(times) >= 16
    assert fake.rest_rate_limited == 0
    # the token bucket keeps to 10 requests per second (one more in a window for network jitter)
    assert max(sum(1 for u in times if t <= u < t + 1.0) for t in times) <= 11
    assert times[-1] - times[0] >= (len(times) - 1) / 10 * 0.9


def test_backfill_command_refuses_bad_arguments(broker: Broker, tmp_path: Path) -> None:
    settings = ingest_settings(broker)
    bad_product = run_cli(["backfill", "--product", "XRP-USD", "--start", "2024-01-01T00:00:00Z",
                           "--end", "2024-01-02T00:00:00Z"], settings, tmp_path)  # fmt: skip
    assert bad_product.returncode == 2 and "not in settings.products" in bad_product.stderr
    bad_time = run_cli(["backfill", "--product", "BTC-USD", "--start", "yesterday",
                        "--end", "2024-01-02T00:00:00Z"], settings, tmp_path)  # fmt: skip
    assert bad_time.returncode == 2 and "not an ISO 8601 time" in bad_time.stderr


def test_synthetic_run_bounded_by_duration_is_paced(broker: Broker, tmp_path: Path) -> None:
    settings = ingest_settings(broker)
    started = time.monotonic()
    result = run_cli(["ingest", "--source", "synthetic", "--rate", "40", "--duration", "1.5", "--no-metrics"],
                     settings, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.monotonic() - started >= 1.5
    trades = int(result.stdout.split(" trades=")[1].split()[0])
    assert 10 <= trades <= 40 * 1.5 + 5  # about rate x duration: paced, not as fast as possible
    assert "unsent=0" in result.stdout
