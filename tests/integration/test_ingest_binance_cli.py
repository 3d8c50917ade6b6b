"""``lakehouse ingest --source binance`` and ``--source synthetic --venue binance`` as users run them
(subprocesses): the summary line, the metrics on the Binance producer's own port, venue keys."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson

from tests.fixtures.binance import FakeBinance
from tests.fixtures.ingest import binance_settings, read_topic, wait_until
from tests.fixtures.services import Broker, child_environment

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


def test_live_binance_producer_serves_its_own_metrics_port(
    broker: Broker, fake_binance: FakeBinance, tmp_path: Path
) -> None:
    settings = binance_settings(broker, fake_binance)
    port = settings.metrics.binance_producer_port
    proc = subprocess.Popen(
        [LAKEHOUSE, "ingest", "--source", "binance"],
        env=child_environment(settings), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        fake_binance.wait_for_connections(1, timeout_s=60)
        fake_binance.trade("BTCUSDT", 12)

        def scraped() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                    return resp.read().decode()
            except OSError:
                return ""

        wait_until(
            lambda: 'coinbase_trades_received_total{product="BTC-USDT"} 12.0' in scraped(), 30, "metrics"
        )
        assert 'coinbase_trades_received_total{product="ETH-USDT"} 0.0' in scraped()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "source=binance" in out and "trades=12" in out and "unsent=0" in out
    messages = read_topic(broker.bootstrap, settings.kafka.trades_topic)
    assert {m.key() for m in messages} == {b"binance:BTC-USDT"}


def test_synthetic_binance_is_its_own_venue(
    broker: Broker, fake_binance: FakeBinance, tmp_path: Path
) -> None:
    settings = binance_settings(broker, fake_binance, symbols=("BTCUSDT", "ETHUSDT"))
    done = subprocess.run(
        [LAKEHOUSE, "ingest", "--source", "synthetic", "--venue", "binance", "--speed", "0",
         "--max-messages", "300", "--no-metrics"],
        env=child_environment(settings), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "trades=300" in done.stdout
    trades = [orjson.loads(m.value()) for m in read_topic(broker.bootstrap, settings.kafka.trades_topic)]
    assert len(trades) == 300
    assert {(t["exchange"], t["product_id"]) for t in trades} == {
        ("synthetic-binance", "BTC-USDT"), ("synthetic-binance", "ETH-USDT"),
    }  # fmt: skip
    assert {t["source"] for t in trades} == {"synthetic"}
    assert all(orjson.loads(t["raw"])["stream"].endswith("@trade") for t in trades)
    assert not fake_binance.rest_requests  # offline: no exchangeInfo asked


def test_record_then_replay_a_binance_feed(broker: Broker, fake_binance: FakeBinance, tmp_path: Path) -> None:
    settings = binance_settings(broker, fake_binance)
    env, output = child_environment(settings), tmp_path / "binance.ndjson.zst"
    proc = subprocess.Popen(
        [LAKEHOUSE, "record", "--venue", "binance", "--output", str(output), "--max-messages", "20"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        fake_binance.wait_for_connections(1, timeout_s=60)
        fake_binance.trade("ETHUSDT", 20)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "recorded 20 frames" in out
    done = subprocess.run(
        [LAKEHOUSE, "ingest", "--source", "replay", "--venue", "binance", "--file", str(output), "--speed", "0",
         "--no-metrics"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    trades = [orjson.loads(m.value()) for m in read_topic(broker.bootstrap, settings.kafka.trades_topic)]
    assert [t["trade_id"] for t in trades] == fake_binance.trade_ids("ETHUSDT")
    assert {(t["exchange"], t["product_id"], t["source"]) for t in trades} == {
        ("binance", "ETH-USDT", "replay")
    }
