"""The embedded stack's supervisor: up -> healthy -> down -> up again with the data kept; idempotent up;
credentials generated and required; a clear error naming a service that cannot come up."""

from __future__ import annotations

import json
import socket
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow as pa
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from infrastructure import supervisor
from infrastructure.bootstrap import ensure_tables, ensure_topics
from infrastructure.catalog import load_catalog
from infrastructure.services import ServiceStartError, port_open
from infrastructure.settings import Settings


def high_watermark(settings: Settings) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "stack-test"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(settings.kafka.trades_topic, 0), timeout=10)[1]
    finally:
        consumer.close()


def test_up_status_down_up_keeps_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # relative, like the default `.lakehouse`: each service runs in a folder of its own
    plain = supervisor.settings_on_free_ports(Path("lake"))
    try:
        settings, started = supervisor.up(plain)
        names = {s.name for s in supervisor.stack_services(settings)}
        assert set(started) == names >= {"kafka", "seaweedfs"}
        credentials = tmp_path / "lake" / "credentials.env"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert settings.s3.access_key is not None
        states = supervisor.status(plain)  # a fresh Settings finds the generated credentials
        assert {s.state for s in states} == {"healthy"}, states
        pids = {s.name: s.pid for s in states}
        for name in names:
            assert (tmp_path / "lake" / "logs" / f"{name}.log").is_file()
            assert (tmp_path / "lake" / "run" / f"{name}.pid").is_file()

        # a second up is a no-op: same processes
        _, started_again = supervisor.up(plain)
        assert started_again == []
        assert {s.name: s.pid for s in supervisor.status(plain)} == pids

        # storage refuses anonymous requests
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{settings.s3.endpoint}/{settings.s3.warehouse_bucket}/", timeout=5)
        assert refused.value.code in (401, 403)

        if "prometheus" in names:  # scrapes the writer and producer endpoints from settings
            url = f"http://127.0.0.1:{settings.stack.prometheus_port}/api/v1/targets"
            scraped: set[str] = set()
            deadline = time.monotonic() + 30
            while len(scraped) < 2 and time.monotonic() < deadline:  # discovery runs just after start
                with urllib.request.urlopen(url, timeout=5) as response:
                    scraped = {t["scrapeUrl"] for t in json.load(response)["data"]["activeTargets"]}
                time.sleep(0.2)
            assert f"http://127.0.0.1:{settings.metrics.bronze_port}/metrics" in scraped
            assert f"http://127.0.0.1:{settings.metrics.producer_port}/metrics" in scraped

        # some data in both stores
        ensure_topics(settings.kafka)
        ensure_tables(load_catalog(settings))
        producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
        producer.produce(settings.kafka.trades_topic, value=b"kept", partition=0)
        assert producer.flush(10) == 0
        namespace = load_catalog(settings)
        namespace.create_namespace_if_not_exists("scratch")
        table = namespace.create_table("scratch.kept", schema=pa.schema([("n", pa.int64())]))
        table.append(pa.table({"n": [1, 2, 3]}))

        assert set(supervisor.down(plain)) == names
        assert {s.state for s in supervisor.status(plain)} == {"down"}
        assert not port_open("127.0.0.1", int(settings.kafka.bootstrap_servers.rsplit(":", 1)[1]))
        assert supervisor.down(plain) == []  # nothing left to stop

        _, restarted = supervisor.up(plain)
        assert set(restarted) == names
        assert high_watermark(settings) == 1
        assert load_catalog(settings).load_table("scratch.kept").scan().to_arrow().num_rows == 3
        assert ensure_topics(settings.kafka) == [] and ensure_tables(load_catalog(settings)) == []
    finally:
        supervisor.down(plain)


def test_a_port_in_use_names_the_service(tmp_path: Path) -> None:
    settings = supervisor.settings_on_free_ports(tmp_path / "lake")
    port = int(settings.kafka.bootstrap_servers.rsplit(":", 1)[1])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(ServiceStartError) as err:
            supervisor.up(settings)
    assert err.value.service == "kafka"
    assert f"port {port}" in str(err.value)
    assert {s.state for s in supervisor.status(settings)} == {"down"}


def test_prometheus_config_fills_in_the_metrics_endpoints(tmp_path: Path) -> None:
    settings = supervisor.settings_on_free_ports(tmp_path)
    text = supervisor.prometheus_config(
        settings, supervisor.PROMETHEUS_TEMPLATE.read_text(), tmp_path / "pushgateway.password"
    )
    assert f"127.0.0.1:{settings.metrics.bronze_port}" in text
    assert f"127.0.0.1:{settings.metrics.producer_port}" in text
    assert f"127.0.0.1:{settings.metrics.binance_producer_port}" in text
    assert f"127.0.0.1:{settings.metrics.coingecko_producer_port}" in text
    assert f"127.0.0.1:{settings.metrics.bronze_reference_port}" in text
    assert "$" not in text
