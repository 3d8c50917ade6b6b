"""Faults during a steady stream from the fake Coinbase, each ending with an exact reconciliation
(see ``tests/fixtures/faults.py``): SIGKILL of the broker, of SeaweedFS (a short outage and one
longer than the writer's old 20-attempt budget), of the writer and of ingest. Bronze holds every
message Kafka holds, once; then silver, after the hourly run and the backfills it triggers, holds
every trade id the exchange made, once, and the holes the completeness check opened were exactly
the ids silver lacked (none when the fault loses nothing)."""

from __future__ import annotations

import signal
import time

import pytest
from confluent_kafka.admin import AdminClient

from infrastructure.bootstrap import ensure_topics
from infrastructure.services import scrape_gauge
from tests.fixtures.completeness import HourlyRun, silver_trade_ids
from tests.fixtures.faults import FaultRig

pytestmark = pytest.mark.slow
RATE = 300  # trades per second: a steady stream small enough for two busy cores
AFTER_S = 5  # the stream goes on this long after the fault is over


def finish(rig: FaultRig, ingest, writer, fault: str, acked_before: int = 0) -> tuple[dict, HourlyRun]:
    """Stream a little longer, stop ingest once the stream's tail is in Kafka, let bronze catch up
    and take its figures, then silver's step (hourly run, backfills); stop the writer."""
    time.sleep(AFTER_S)
    acked = acked_before + rig.stop_ingest(ingest)
    rig.wait_written(120, writer)
    figures, run = rig.complete(rig.reconcile(fault, acked))
    writer.send_signal(signal.SIGTERM)
    assert writer.wait(timeout=60) == 0, rig.log_of(writer)[-3000:]
    return figures, run


def assert_exact(figures: dict) -> None:
    assert figures["kafka_messages_missing_from_bronze"] == 0
    assert figures["bronze_rows"] == figures["distinct_positions"], "a second row at one position"
    # bronze holds the new log plus what it had rescued from the old one: nothing skipped, nothing twice
    assert figures["bronze_rows"] == figures["kafka_end_offsets"] + figures["rescued_by_bronze"]


def assert_complete(rig: FaultRig, run: HourlyRun, lossless: bool) -> None:
    """Silver against the exchange, product by product: the check opened exactly the ids silver
    lacked after the hourly run (none if the fault loses nothing), the backfills closed them all,
    and silver now holds every trade id the exchange made, each once."""
    silver = silver_trade_ids(rig.settings)
    assert run.left == [] and [r for r in run.rows if r["status"] == "open"] == []
    for product in rig.fake.products:
        made = rig.fake.trade_ids(product)
        assert made, f"no trades made on {product}"
        lacked = set(made) - set(run.silver_before.get(product, ()))
        assert run.opened().get(product, set()) == lacked, product
        if lossless:
            assert lacked == set(), f"{product}: {len(lacked)} trades lacking after a fault that loses none"
        assert sorted(silver.get(product, ())) == made, (
            f"{product}: silver is not the exchange's trades, once each"
        )
    assert run.backfilled == sum(len(ids) for ids in run.opened().values())


def test_broker_sigkill_and_restart(fault_rig: FaultRig) -> None:
    rig = fault_rig
    writer, ingest = rig.writer(), rig.ingest()
    rig.stream(RATE)
    rig.wait_rows(RATE * 3, 60)
    rig.broker.kill()
    time.sleep(15)
    rig.broker.start()
    figures, run = finish(rig, ingest, writer, "broker SIGKILL, restart after 15 s")
    assert_exact(figures)
    # what the broker acknowledged and then lost: bronze rescued part of it, the rest is gone from
    # Kafka and the trade-id completeness check found it and had it backfilled from the exchange
    lost = figures["acked"] - figures["kafka_end_offsets"] - figures["rescued_by_bronze"]
    print(
        f"broker lost {figures['acked'] - figures['kafka_end_offsets']} acknowledged trades: bronze rescued "
        f"{figures['rescued_by_bronze']}, lost {lost} (writer knew of {figures['lost_known']}); "
        f"silver found {figures['missing_found']} missing in {figures['gaps_found']} gaps, "
        f"backfilled {figures['backfilled']}"
    )
    # The log went backwards. If bronze had read past the surviving end, the writer must have found
    # and recorded it (else bronze would hold more than the new log plus the rescued: assert_exact
    # above fails); if the lost messages were never read, there is nothing to record and the
    # completeness check alone finds them (both happen, depending on when the broker dies).
    if figures["resets"]:
        assert "went backwards" in rig.log_of(writer)
    print(f"reset path exercised: {bool(figures['resets'])}")
    assert_complete(rig, run, lossless=False)


def test_topic_recreated_under_bronze(fault_rig: FaultRig) -> None:
    """The log goes back to offset 0 while bronze holds 1,000 messages: the writer records the reset
    and reads the new log from its start; nothing new is skipped as "already covered". The second
    ingest re-sends each product's latest trade (Coinbase's ``last_match``): silver holds it once."""
    rig = fault_rig
    kafka = rig.settings.kafka
    writer, ingest = rig.writer(), rig.ingest()
    for product in rig.fake.products:
        rig.fake.trade(product, 1_000 // len(rig.fake.products))
    first = rig.stop_ingest(ingest)
    rig.wait_written(60, writer)
    partitions = len([p for p, n in rig.recorded().items() if n > 0])  # each one's log goes back
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    for future in admin.delete_topics([kafka.trades_topic]).values():
        future.result(30)
    time.sleep(1)
    ensure_topics(kafka)
    ingest = rig.ingest()
    for product in rig.fake.products:
        rig.fake.trade(product, 300 // len(rig.fake.products))
    second = rig.stop_ingest(ingest)
    rig.wait_written(60, writer)
    figures, run = rig.complete(rig.reconcile("topic deleted and recreated under bronze", first + second))
    writer.send_signal(signal.SIGTERM)
    assert writer.wait(timeout=60) == 0, rig.log_of(writer)[-3000:]
    assert_exact(figures)
    assert first == 1_000 and second == 300 + len(rig.fake.products)  # + the last_match re-sends
    assert figures["kafka_end_offsets"] == second and figures["rescued_by_bronze"] == first
    assert figures["resets"] == partitions and figures["lost_known"] == 0
    assert figures["bronze_rows"] == first + second
    assert_complete(rig, run, lossless=True)


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
    writer, ingest = rig.writer(), rig.ingest()
    rig.stream(RATE)
    rig.wait_rows(RATE * 2, 60)
    rig.store.kill()
    time.sleep(outage_s)
    rig.store.start()
    figures, run = finish(rig, ingest, writer, f"SeaweedFS SIGKILL, {label} outage ({outage_s} s)")
    assert_all(figures)
    log = rig.log_of(writer)
    retries = log.count("bronze append failed (attempt")
    print(f"writer retried {retries} times, {len(log.splitlines())} log lines")
    assert "Traceback" not in log
    if label == "long":
        assert retries > 20
    assert_complete(rig, run, lossless=True)


def kill_once_streaming(rig: FaultRig, victim) -> None:
    """SIGKILL ``victim`` once bronze holds a few seconds of the stream."""
    rig.wait_rows(RATE * 3, 60)
    victim.kill()
    victim.wait(timeout=10)


def test_writer_sigkill(fault_rig: FaultRig) -> None:
    """Also: once everything is written the lag gauge reads 0 (not the last flush's backlog)."""
    rig = fault_rig
    writer, ingest = rig.writer(), rig.ingest()
    rig.stream(RATE)
    kill_once_streaming(rig, writer)
    time.sleep(3)
    restarted = rig.writer(metrics=True)
    time.sleep(AFTER_S)
    acked = rig.stop_ingest(ingest)
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
    figures, run = rig.complete(rig.reconcile("writer SIGKILL, restarted after 3 s", acked))
    restarted.send_signal(signal.SIGTERM)
    assert restarted.wait(timeout=60) == 0, rig.log_of(restarted)[-3000:]
    assert_all(figures)
    assert_complete(rig, run, lossless=True)


def test_ingest_sigkill(fault_rig: FaultRig) -> None:
    """A killed ingest prints no summary: what it had acknowledged is what Kafka holds from it. The
    trades made while no ingest was reading are missing: found by silver's check and backfilled."""
    rig = fault_rig
    writer, first = rig.writer(), rig.ingest()
    rig.stream(RATE)
    kill_once_streaming(rig, first)
    before = sum(rig.end_offsets().values())
    figures, run = finish(rig, rig.ingest(), writer, "ingest SIGKILL, a new ingest after it", before)
    assert_all(figures)
    # the market traded on while no ingest read it (a child process takes seconds to subscribe)
    assert figures["missing_found"] > 0
    assert_complete(rig, run, lossless=False)
