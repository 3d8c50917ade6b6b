"""Faults during a steady synthetic stream, each ending with an exact reconciliation (see
``tests/fixtures/faults.py``): SIGKILL of the broker, of SeaweedFS (a short outage and one longer
than the writer's old 20-attempt budget), of the writer and of ingest."""

from __future__ import annotations

import signal
import time

import pytest
from confluent_kafka.admin import AdminClient

from infrastructure.bootstrap import ensure_topics
from infrastructure.services import scrape_gauge
from tests.fixtures.bronze import produce_trades
from tests.fixtures.faults import PARTITIONS, FaultRig

pytestmark = pytest.mark.slow
RATE = 300  # trades per second: a steady stream small enough for two busy cores


def finish(rig: FaultRig, ingest, writer, fault: str, acked_before: int = 0) -> dict:
    """Let ingest end (its --duration), bronze catch up and stop; return the reconciliation."""
    assert ingest.wait(timeout=120) == 0, rig.log_of(ingest)[-3000:]
    rig.wait_written(120, writer)
    writer.send_signal(signal.SIGTERM)
    assert writer.wait(timeout=60) == 0, rig.log_of(writer)[-3000:]
    return rig.reconcile(fault, acked_before + rig.acked(ingest))


def assert_exact(figures: dict) -> None:
    assert figures["kafka_messages_missing_from_bronze"] == 0
    assert figures["bronze_rows"] == figures["distinct_positions"], "a second row at one position"
    # bronze holds the new log plus what it had rescued from the old one: nothing skipped, nothing twice
    assert figures["bronze_rows"] == figures["kafka_end_offsets"] + figures["rescued_by_bronze"]


def test_broker_sigkill_and_restart(fault_rig: FaultRig) -> None:
    rig = fault_rig
    writer, ingest = rig.writer(), rig.ingest(RATE, 30)
    rig.wait_rows(RATE * 3, 60)
    rig.broker.kill()
    time.sleep(15)
    rig.broker.start()
    figures = finish(rig, ingest, writer, "broker SIGKILL, restart after 15 s")
    assert_exact(figures)
    # what the broker acknowledged and then lost: bronze rescued part of it, the rest is gone from
    # Kafka (the trade-id completeness check refills it from the exchange)
    lost = figures["acked"] - figures["kafka_end_offsets"] - figures["rescued_by_bronze"]
    print(
        f"broker lost {figures['acked'] - figures['kafka_end_offsets']} acknowledged trades: bronze rescued "
        f"{figures['rescued_by_bronze']}, lost {lost} (writer knew of {figures['lost_known']})"
    )
    if figures["acked"] > figures["kafka_end_offsets"]:  # the log went backwards: found and recorded
        assert figures["resets"] >= 1 and "went backwards" in rig.log_of(writer)


def test_topic_recreated_under_bronze(fault_rig: FaultRig) -> None:
    """The log goes back to offset 0 while bronze holds 1,000 messages: the writer records the reset
    and reads the new log from its start; nothing new is skipped as "already covered"."""
    rig = fault_rig
    kafka = rig.settings.kafka
    writer = rig.writer()
    first = len(produce_trades(rig.settings, 1_000))
    rig.wait_written(60, writer)
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    for future in admin.delete_topics([kafka.trades_topic]).values():
        future.result(30)
    time.sleep(1)
    ensure_topics(kafka)
    second = len(produce_trades(rig.settings, 300, start=first))
    rig.wait_written(60, writer)
    writer.send_signal(signal.SIGTERM)
    assert writer.wait(timeout=60) == 0, rig.log_of(writer)[-3000:]
    figures = rig.reconcile("topic deleted and recreated under bronze", first + second)
    assert_exact(figures)
    assert figures["kafka_end_offsets"] == second and figures["rescued_by_bronze"] == first
    assert figures["resets"] == PARTITIONS and figures["lost_known"] == 0
    assert figures["bronze_rows"] == first + second


def assert_all(figures: dict) -> None:
    """No reset: every acknowledged trade is in Kafka and in bronze, once."""
    assert figures["resets"] == 0
    assert figures["acked"] == figures["kafka_end_offsets"] == figures["bronze_rows"]
    assert figures["bronze_rows"] == figures["distinct_positions"]
    assert figures["kafka_messages_missing_from_bronze"] == 0


@pytest.mark.parametrize(("outage_s", "label"), [(5, "short"), (30, "long")])
def test_seaweedfs_sigkill(fault_rig: FaultRig, outage_s: float, label: str) -> None:
    """The long outage outlasts the writer's old budget (20 attempts, here 1 s apart at most)."""
    rig = fault_rig
    writer, ingest = rig.writer(), rig.ingest(RATE, outage_s + 12)
    rig.wait_rows(RATE * 2, 60)
    rig.store.kill()
    time.sleep(outage_s)
    rig.store.start()
    figures = finish(rig, ingest, writer, f"SeaweedFS SIGKILL, {label} outage ({outage_s} s)")
    assert_all(figures)
    log = rig.log_of(writer)
    retries = log.count("bronze append failed (attempt")
    print(f"writer retried {retries} times, {len(log.splitlines())} log lines")
    assert "Traceback" not in log
    if label == "long":
        assert retries > 20


def kill_once_streaming(rig: FaultRig, victim) -> None:
    """SIGKILL ``victim`` once bronze holds a few seconds of the stream."""
    rig.wait_rows(RATE * 3, 60)
    victim.kill()
    victim.wait(timeout=10)


def test_writer_sigkill(fault_rig: FaultRig) -> None:
    """Also: once everything is written the lag gauge reads 0 (not the last flush's backlog)."""
    rig = fault_rig
    writer, ingest = rig.writer(), rig.ingest(RATE, 20)
    kill_once_streaming(rig, writer)
    time.sleep(3)
    restarted = rig.writer(metrics=True)
    assert ingest.wait(timeout=120) == 0, rig.log_of(ingest)[-3000:]
    rig.wait_written(120, restarted)
    m = rig.settings.metrics
    url = f"http://{m.host}:{m.bronze_port}/metrics"
    lag = None
    for _ in range(20):  # the gauge follows the table within a second or two
        lag = scrape_gauge(url, "lakehouse_bronze_consumer_lag_messages")
        if lag == 0:
            break
        time.sleep(0.5)
    assert lag == 0, f"lag gauge {lag} with everything written"
    restarted.send_signal(signal.SIGTERM)
    assert restarted.wait(timeout=60) == 0, rig.log_of(restarted)[-3000:]
    assert_all(rig.reconcile("writer SIGKILL, restarted after 3 s", rig.acked(ingest)))


def test_ingest_sigkill(fault_rig: FaultRig) -> None:
    """A killed ingest prints no summary: what it had acknowledged is what Kafka holds from it."""
    rig = fault_rig
    writer, first = rig.writer(), rig.ingest(RATE, 60)
    kill_once_streaming(rig, first)
    before = sum(rig.end_offsets().values())
    figures = finish(rig, rig.ingest(RATE, 8), writer, "ingest SIGKILL, a new ingest after it", before)
    assert_all(figures)
