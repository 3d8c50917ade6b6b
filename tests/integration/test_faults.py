"""Faults during a steady synthetic stream, each ending with an exact reconciliation (see
``tests/fixtures/faults.py``): SIGKILL of the broker, of SeaweedFS (a short outage and one longer
than the writer's old 20-attempt budget), of the writer and of ingest."""

from __future__ import annotations

import signal
import time

import pytest

from tests.fixtures.faults import FaultRig

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
    print(f"broker lost {figures['acked'] - figures['kafka_end_offsets']} acknowledged trades: bronze rescued "
          f"{figures['rescued_by_bronze']}, lost {lost} (writer knew of {figures['lost_known']})")
    assert lost >= 0
    if figures["acked"] > figures["kafka_end_offsets"]:  # the log went backwards: found and recorded
        assert figures["resets"] >= 1 and "went backwards" in rig.log_of(writer)
