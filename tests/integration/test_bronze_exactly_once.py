"""Exactly once into bronze, proven with faults: SIGKILLs at random points (and between the table
commit and the group commit), a rebalance between two writers, and poison messages."""

from __future__ import annotations

import random
import signal
import subprocess
import time

import pyarrow.compute as pc
from confluent_kafka import Consumer, TopicPartition

from infrastructure.catalog import load_catalog
from infrastructure.tables import BRONZE_TRADES
from ingestion.dead_letters import read_dead_letter_headers
from orchestration.local_stack import produce, synthetic_trade
from processing.bronze.progress import table_offsets
from processing.duckdb_engine import connect
from tests.fixtures.bronze import BronzeEnv, produce_trades

N_TRADES = 200_000
# each step that waits for progress first gets a tranche of its own: however fast the writers
# before it were, there is always work left to make progress on
TRANCHE = 20_000
PROGRESS_STEPS = 4
DEADLINE_S = 900  # the whole fault test; every wait below is bounded by it


def recorded_total(env: BronzeEnv) -> int:
    table = load_catalog(env.settings).load_table(BRONZE_TRADES.identifier)
    topic = env.settings.kafka.trades_topic
    return sum(n for (t, _p), n in table_offsets(table).items() if t == topic)


def wait_for(condition, deadline: float, what: str, proc: subprocess.Popen | None = None) -> None:
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"writer exited with {proc.returncode} while waiting for {what}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def bronze_rows(env: BronzeEnv):
    table = load_catalog(env.settings).load_table(BRONZE_TRADES.identifier)
    scan = table.scan(
        row_filter=f"kafka_topic == '{env.settings.kafka.trades_topic}'",
        selected_fields=("kafka_partition", "kafka_offset", "trade_id"),
    )
    return scan.to_arrow()


def test_exactly_once_through_crashes_and_a_rebalance(bronze_env: BronzeEnv) -> None:
    env, rng = bronze_env, random.Random(20261122)
    produced = produce_trades(env.settings, N_TRADES - PROGRESS_STEPS * TRANCHE)

    def produce_tranche() -> None:
        produced.extend(produce_trades(env.settings, TRANCHE, start=len(produced)))

    deadline = time.monotonic() + DEADLINE_S
    kills = 0

    # 1-2: die right after a table commit, before the consumer-group commit (the test hook)
    for nth in (1, 2):
        proc = env.writer("--no-metrics", "--crash-after-commits", str(nth))
        assert proc.wait(timeout=max(1, deadline - time.monotonic())) == -signal.SIGKILL
        kills += 1

    # 3-5: SIGKILL at a random moment once the writer is making progress
    for _ in range(3):
        produce_tranche()
        before = recorded_total(env)
        proc = env.writer("--no-metrics")
        wait_for(lambda b=before: recorded_total(env) > b, deadline, "progress", proc)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1

    # 6: a second writer joins the group (a rebalance hands partitions over), is killed mid-way and
    # restarted under its member id, which takes its partitions back
    produce_tranche()
    assert len(produced) == N_TRADES
    before = recorded_total(env)
    first, second = env.writer("--no-metrics"), env.writer("--no-metrics", "--instance-id", "bronze-2")
    wait_for(lambda: recorded_total(env) > before, deadline, "progress with two writers", first)
    time.sleep(rng.uniform(0.5, 2.0))
    second.send_signal(signal.SIGKILL)
    second.wait(timeout=30)
    kills += 1
    second = env.writer("--no-metrics", "--instance-id", "bronze-2")
    wait_for(lambda: recorded_total(env) >= N_TRADES, deadline, "all trades in bronze", first)
    wait_for(lambda: env.has_joined(second), deadline, "the restarted writer to join", second)
    for proc in (second, first):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert kills >= 5

    rows = bronze_rows(env)
    pairs = set(zip(rows["kafka_partition"].to_pylist(), rows["kafka_offset"].to_pylist(), strict=True))
    assert rows.num_rows == N_TRADES, f"{rows.num_rows - N_TRADES:+} rows against produced"
    assert len(pairs) == N_TRADES, "duplicate (partition, offset)"
    assert pairs == set(produced), "missing or foreign (partition, offset)"
    assert pc.count_distinct(rows["trade_id"]).as_py() == N_TRADES

    # an independent reader agrees: DuckDB through the REST catalog
    con = connect(env.settings)
    duck = con.execute(
        "SELECT count(*), sum(trade_id), sum(kafka_offset) FROM lake.bronze.trades WHERE kafka_topic = ?",
        [env.settings.kafka.trades_topic],
    ).fetchone()
    assert duck == (rows.num_rows, pc.sum(rows["trade_id"]).as_py(), pc.sum(rows["kafka_offset"]).as_py())


def test_poison_messages_are_dead_lettered_and_covered(bronze_env: BronzeEnv) -> None:
    env = bronze_env
    good = [synthetic_trade(i) for i in range(50)]
    key = good[0].key
    bad_price = good[0].to_wire().replace(b'"price":"', b'"price":"-')
    poison = [
        (key, b"{not json", "not JSON"),
        (key, bad_price, "non-positive price"),
        (key, b'{"exchange":"coinbase"}', "missing fields"),
        (key, None, "tombstone"),
    ]
    messages = [(t.key, t.to_wire()) for t in good[:25]]
    messages += [(k, v) for k, v, _ in poison]
    messages += [(t.key, t.to_wire()) for t in good[25:]]
    produce(env.settings, messages)

    proc = env.writer("--no-metrics", "--idle-exit", "8")
    assert proc.wait(timeout=180) == 0

    rows = bronze_rows(env)
    assert sorted(rows["trade_id"].to_pylist()) == list(range(50))
    # the table's offsets cover the poison too: a restart will not see them again
    assert recorded_total(env) == len(messages)

    consumer = Consumer(
        {
            "bootstrap.servers": env.settings.kafka.bootstrap_servers,
            "group.id": "dlq-check",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.assign([TopicPartition(env.settings.kafka.dlq_topic, 0, 0)])
        letters = []
        deadline = time.monotonic() + 30
        while len(letters) < len(poison) and time.monotonic() < deadline:
            m = consumer.poll(1.0)
            if m is not None and m.error() is None:
                letters.append((m.value(), read_dead_letter_headers(m.headers())))
    finally:
        consumer.close()
    assert len(letters) == len(poison)
    for (value, headers), (_k, original, reason) in zip(letters, poison, strict=True):
        assert value == original
        assert reason in headers["dlq.reason"]
        assert headers["dlq.stage"] == "bronze"
        assert headers["dlq.origin"].startswith(f"{env.settings.kafka.trades_topic}/")
