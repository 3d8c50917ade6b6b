"""How far bronze has got: its recorded Kafka offsets against the topic's end, and how to keep them.

The bronze stage's answers for everyone else (the backfill DAG waits on them, maintenance carries
the offsets through its commits, the demo prints them), so nobody outside this folder reads the
snapshot-summary property or builds a watermark consumer of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition
from pyiceberg.table import Table

from infrastructure.kafka import consumer_config
from infrastructure.settings import KafkaSettings, Settings
from processing.bronze.resets import RESETS_PROPERTY, encode_resets, snapshot_summaries, table_resets
from processing.bronze.rows import OFFSETS_PROPERTY, Offsets, encode_offsets, recorded_offsets

POLL_S = 2.0


def table_offsets(table: Table) -> Offsets:
    """Offsets recorded in the table: from the newest snapshot summary that carries them."""
    return recorded_offsets(snapshot_summaries(table))


def bronze_offsets(settings: Settings, identifier: str = "bronze.trades") -> Offsets:
    """The offsets a bronze table (``bronze.trades``) records now: what its writers resume from."""
    from infrastructure.catalog import load_catalog

    return table_offsets(load_catalog(settings).load_table(identifier))


def offsets_properties(table: Table) -> dict[str, str]:
    """Snapshot properties that keep the writer's offsets (and the log resets it recorded, which
    travel with them) in a commit made by someone else (compaction, expiry): the writer resumes from
    the newest snapshot that has them."""
    offsets = table_offsets(table)
    if not offsets:
        return {}
    resets = table_resets(table)
    return {
        OFFSETS_PROPERTY: encode_offsets(offsets),
        **({RESETS_PROPERTY: encode_resets(resets)} if resets else {}),
    }


class TopicEnds:
    """End offsets (high watermarks) of a topic's partitions, through one reused consumer."""

    def __init__(self, kafka: KafkaSettings, topic: str, group_id: str = "lakehouse-bronze-progress") -> None:
        self.topic = topic
        self.consumer = Consumer(consumer_config(kafka, group_id))

    def ends(self, timeout_s: float = 10.0) -> dict[int, int]:
        partitions = self.consumer.list_topics(self.topic, timeout=timeout_s).topics[self.topic].partitions
        return {
            p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=timeout_s)[1]
            for p in partitions
        }

    def close(self) -> None:
        self.consumer.close()


def behind(recorded: Offsets, topic: str, ends: dict[int, int]) -> dict[int, int]:
    """Messages per partition that the topic has and bronze has not recorded (pure)."""
    return {
        p: end - recorded.get((topic, p), 0) for p, end in ends.items() if recorded.get((topic, p), 0) < end
    }


def wait_until_written(
    table: Table,
    kafka: KafkaSettings,
    timeout_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Block until bronze's recorded offsets reach the trades topic's end as it is now.

    Raises ``TimeoutError`` with what is still missing per partition after ``timeout_s``."""
    topic = kafka.trades_topic
    probe = TopicEnds(kafka, topic, "lakehouse-bronze-wait")
    try:
        ends = probe.ends()
    finally:
        probe.close()
    deadline = time.monotonic() + timeout_s
    while missing := behind(table_offsets(table.refresh()), topic, ends):
        if time.monotonic() > deadline:
            raise TimeoutError(f"bronze is still behind the topic (messages per partition): {missing}")
        sleep(POLL_S)
