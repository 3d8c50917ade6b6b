"""The bronze writer's I/O loop: consume trades, append batches to ``bronze.trades``, exactly once.

The table, not the consumer group, is the source of truth for offsets (see ``rows``):
- on partition assignment the consumer seeks to the offsets recorded in the table;
- every append carries the merged offsets in its snapshot summary; pyiceberg's commit asserts the
  snapshot it was based on, so if another writer committed meanwhile (a rebalance) the commit is
  refused, and the loop re-reads the table, drops the rows it already covers and retries. The
  writer re-reads the table only then (and on assignment or an error): between its own commits the
  table it knows is the table there is, so refreshing before every append would only cost time;
- the consumer-group commit that follows is only for lag monitoring: a crash before it loses
  nothing and duplicates nothing, because the next start seeks to the table's offsets again.
Poison messages go to the DLQ (delivery confirmed before the append that covers their offsets).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from operator import itemgetter

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka import Message as KafkaMessage
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

from infrastructure.catalog import load_catalog
from infrastructure.settings import Settings
from infrastructure.tables import BRONZE_TRADES
from ingestion.dead_letters import dead_letter_headers
from processing.bronze.metrics import BronzeMetrics
from processing.bronze.rows import (
    OFFSETS_PROPERTY,
    Batch,
    Consumed,
    Offsets,
    encode_offsets,
    merge_offsets,
    recorded_offsets,
)
from processing.maintenance import StreamingRetention

log = logging.getLogger(__name__)
STAGE = "bronze"
MAX_COMMIT_ATTEMPTS = 20
CONSUME_BATCH = 5_000
NO_RETRY = ("commit.retry.num-retries", "0")
RECEIVE_MAX_BYTES = 1_000_000_000
FETCH_LIMITS = {
    "max.partition.fetch.bytes": 262_144,
    "fetch.max.bytes": 1_048_576,
    "queued.max.messages.kbytes": 8_192,
}
_SECOND = itemgetter(1)  # of confluent's (timestamp type, timestamp) pair


def table_offsets(table: Table) -> Offsets:
    """Offsets recorded in the table: walk snapshots back from the current one."""

    def summaries():
        snapshot = table.current_snapshot()
        while snapshot is not None:
            yield snapshot.summary.additional_properties if snapshot.summary else {}
            parent = snapshot.parent_snapshot_id
            snapshot = table.snapshot_by_id(parent) if parent is not None else None

    return recorded_offsets(summaries())


def disable_commit_retries(table: Table) -> None:
    """Make pyiceberg surface commit conflicts instead of re-applying a stale batch (tables created
    before the contract carried this property get it here)."""
    if table.properties.get(NO_RETRY[0]) != NO_RETRY[1]:
        with table.transaction() as tx:
            tx.set_properties({NO_RETRY[0]: NO_RETRY[1]})


class DeliveryFailed(RuntimeError):
    pass


class BronzeWriter:
    """One writer process. ``crash_after_commits`` (tests only) SIGKILLs this process right after its
    Nth table commit, before the consumer-group commit: the worst moment for exactly-once."""

    def __init__(
        self,
        settings: Settings,
        metrics: BronzeMetrics | None = None,
        crash_after_commits: int | None = None,
        retention: StreamingRetention | None = None,
    ) -> None:
        self.settings = settings
        # tags each closed hour and expires old snapshots within its appends (bounded commit cost)
        self.retention = retention or StreamingRetention(settings.maintenance)
        self.metrics = metrics or BronzeMetrics()
        self.crash_after_commits = crash_after_commits
        self.commits = 0
        self.table = load_catalog(settings).load_table(BRONZE_TRADES.identifier)
        disable_commit_retries(self.table)
        self.batch = Batch()
        # the table's offsets as of the snapshot this writer last read or committed; None: re-read
        # before the next append. Our own commits keep it current, and a commit by anyone else is
        # refused (pyiceberg asserts the snapshot the append is based on), which clears it.
        self.recorded: Offsets | None = None
        self.positions: Offsets = {}  # next offset this consumer will read, per assigned partition
        self._appender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bronze-append")
        self._in_flight: Future[Offsets] | None = None  # the append the thread is running
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka.bootstrap_servers,
                "group.id": settings.bronze.consumer_group,
                "group.instance.id": settings.bronze.instance_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                # the table commit can take seconds; do not get kicked out of the group meanwhile
                "max.poll.interval.ms": 300_000,
                # a crashed writer's partitions move to a live one after this long, not the 45 s default
                "session.timeout.ms": 6_000,
                "heartbeat.interval.ms": 1_000,
                # noida-db answers a fetch with the whole backlog of each partition, ignoring
                # fetch.max.bytes; librdkafka's 100 MB default then refuses it and the consumer stalls
                "receive.message.max.bytes": RECEIVE_MAX_BYTES,
                # but it does cut a partition's answer at max.partition.fetch.bytes: small fetches and
                # a small prefetch queue keep the broker from copying out a whole backlog at once
                # (its peak over its resting size fell from 234 to 140 MiB draining 500k trades)
                # and the writer from buffering one, at no measurable cost in throughput
                **FETCH_LIMITS,
            }
        )
        self.dlq = Producer(
            {
                "bootstrap.servers": settings.kafka.bootstrap_servers,
                "enable.idempotence": True,
                "linger.ms": 5,
            }
        )
        self._dlq_failures: list[str] = []

    # ------------------------------------------------------------ rebalance callbacks

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._settle()  # the append thread owns the table while an append is in flight
        recorded = self._reread()
        for tp in partitions:
            tp.offset = recorded.get((tp.topic, tp.partition), OFFSET_BEGINNING)
            if tp.offset >= 0:
                self.positions[(tp.topic, tp.partition)] = tp.offset
        log.info("assigned %s", [(tp.topic, tp.partition, tp.offset) for tp in partitions])
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # hand over with everything consumed so far durable; the next owner starts where we stop
        self.flush()
        for tp in partitions:
            self.positions.pop((tp.topic, tp.partition), None)

    # ------------------------------------------------------------ the loop

    def run(self, stop: threading.Event, idle_exit_s: float | None = None) -> None:
        """Consume until ``stop`` is set (or nothing arrived for ``idle_exit_s``), then flush and close."""
        topic = self.settings.kafka.trades_topic
        bronze = self.settings.bronze
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_revoke)  # fmt: skip
        last_message = time.monotonic()
        try:
            while not stop.is_set():
                wanted = max(1, min(CONSUME_BATCH, bronze.flush_rows - len(self.batch)))
                messages = self.consumer.consume(num_messages=wanted, timeout=0.2)
                now = time.monotonic()
                if messages:
                    last_message = now
                    self._take(messages)
                if self.batch.due(bronze.flush_rows, bronze.flush_seconds, time.monotonic()):
                    self.flush(wait=False)
                if idle_exit_s is not None and now - last_message > idle_exit_s:
                    break
            self.flush()
        finally:
            self._appender.shutdown(wait=True)
            self.consumer.close()
            self.dlq.flush(10)

    def _take(self, messages: list[KafkaMessage]) -> None:
        ingest_time = datetime.now(UTC)
        errors = list(map(KafkaMessage.error, messages))
        if any(errors):
            for error in filter(None, errors):
                if error.code() != KafkaError._PARTITION_EOF:
                    self.metrics.errors.labels("consume").inc()
                    log.warning("consume error: %s", error)
            messages = [m for m, error in zip(messages, errors, strict=True) if error is None]
        consumed = Consumed(
            list(map(KafkaMessage.topic, messages)),
            list(map(KafkaMessage.partition, messages)),
            list(map(KafkaMessage.offset, messages)),
            list(map(_SECOND, map(KafkaMessage.timestamp, messages))),
            list(map(KafkaMessage.key, messages)),
            list(map(KafkaMessage.value, messages)),
        )
        for poison in self.batch.add(consumed, ingest_time, time.monotonic()):
            log.warning("dead-lettering %s/%d/%d: %s", *poison.origin, poison.reason)
        for tp in set(zip(consumed.topics, consumed.partitions, strict=True)):
            self.positions[tp] = self.batch.next_offsets[tp]

    def flush(self, wait: bool = True) -> None:
        """Hand the batch to the append thread; with ``wait``, return once it is in the table.

        One append at a time, in consumed order: a batch is only handed over after the one before
        it is committed, so consuming and decoding the next batch overlaps the append of this one."""
        self._settle()
        if self.batch.next_offsets:
            batch, self.batch = self.batch, Batch()
            self._in_flight = self._appender.submit(self._append, batch)
        if wait:
            self._settle()

    def _settle(self) -> None:
        """Wait for the append in flight (re-raising its failure), then bring the consumer in line."""
        if self._in_flight is None:
            return
        future, self._in_flight = self._in_flight, None
        recorded = future.result()
        self._catch_up(recorded)
        self._commit_group(recorded)

    def _append(self, batch: Batch) -> Offsets:
        """Append ``batch`` (minus what the table already holds) with its offsets; on the append thread."""
        started = time.perf_counter()
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            try:
                recorded, written = self._append_once(batch)
                break
            except CommitFailedException as exc:
                self.recorded = None
                self.metrics.conflicts.inc()
                log.info("commit conflict (attempt %d), re-reading the table: %s", attempt + 1, exc)
            except Exception:
                # storage/catalog/DLQ unavailable: keep the batch, back off, try again; the commit may
                # have landed before the error, so re-read what the table holds first
                self.recorded = None
                self.metrics.errors.labels("commit").inc()
                log.exception("bronze append failed; retrying")
                time.sleep(min(5.0, 0.5 * (attempt + 1)))
        else:
            raise RuntimeError(f"bronze append failed {MAX_COMMIT_ATTEMPTS} times; giving up")
        self.metrics.commit_duration.observe(time.perf_counter() - started)
        if written is not None:
            self.commits += 1
            self.metrics.table_snapshots.set(len(self.table.snapshots()))
            if self.crash_after_commits is not None and self.commits >= self.crash_after_commits:
                os.kill(os.getpid(), signal.SIGKILL)  # test hook: die between table and group commit
        return recorded

    def _reread(self) -> Offsets:
        self.table.refresh()
        self.recorded = table_offsets(self.table)
        return self.recorded

    def _append_once(self, batch: Batch) -> tuple[Offsets, Batch | None]:
        recorded = self.recorded if self.recorded is not None else self._reread()
        pending = batch.without_covered(recorded)
        if not pending.next_offsets:
            return recorded, None  # another writer already holds all of it
        self._dead_letter(pending)
        offsets = merge_offsets(recorded, pending.next_offsets)
        # the append, plus the hour's tag and snapshot expiry when due, in one commit
        self.retention.append(self.table, pending.to_arrow(), {OFFSETS_PROPERTY: encode_offsets(offsets)})
        self.recorded = offsets  # the append moved self.table to the snapshot it committed
        self.metrics.rows_written.inc(pending.rows)
        self.metrics.batches.inc()
        newest = pending.newest_event_time()
        if newest is not None:
            self.metrics.newest_event_epoch_s = max(newest.timestamp(), self.metrics.newest_event_epoch_s)
        return offsets, pending

    def _dead_letter(self, pending: Batch) -> None:
        if not pending.poison:
            return
        self._dlq_failures.clear()
        for poison in pending.poison:
            self.dlq.produce(
                self.settings.kafka.dlq_topic,
                value=poison.message.value,
                key=poison.message.key,
                headers=dead_letter_headers(poison.reason, STAGE, origin=poison.origin),
                on_delivery=self._delivered,
            )
            self.dlq.poll(0)
        if self.dlq.flush(30) > 0 or self._dlq_failures:
            self.metrics.errors.labels("dlq").inc()
            raise DeliveryFailed(f"dead letters not delivered: {self._dlq_failures[:3]}")
        self.metrics.dead_letters.inc(len(pending.poison))

    def _delivered(self, err, _msg) -> None:
        if err is not None:
            self._dlq_failures.append(str(err))

    def _catch_up(self, recorded: Offsets) -> None:
        """If another writer got further on a partition we own, skip ahead instead of re-reading it."""
        for tp, n in recorded.items():
            if tp in self.positions and self.positions[tp] < n:
                self.consumer.seek(TopicPartition(tp[0], tp[1], n))
                self.positions[tp] = n

    def _commit_group(self, recorded: Offsets) -> None:
        owned = [TopicPartition(t, p, n) for (t, p), n in recorded.items() if (t, p) in self.positions]
        try:
            if owned:
                self.consumer.commit(offsets=owned, asynchronous=False)
        except Exception as exc:  # monitoring only; the table holds the truth
            self.metrics.errors.labels("group_commit").inc()
            log.warning("consumer group commit failed: %s", exc)
        for t, p, n in ((tp.topic, tp.partition, tp.offset) for tp in owned):
            try:
                # the high watermark of the last fetch response: no broker round trip per flush
                _low, high = self.consumer.get_watermark_offsets(TopicPartition(t, p), cached=True)
                if high >= 0:
                    self.metrics.lag.labels(str(p)).set(max(0, high - n))
            except Exception:
                self.metrics.errors.labels("watermarks").inc()


def run_writer(
    settings: Settings,
    stop: threading.Event | None = None,
    crash_after_commits: int | None = None,
    idle_exit_s: float | None = None,
    serve_metrics: bool = True,
) -> BronzeWriter:
    metrics = BronzeMetrics()
    if serve_metrics:
        metrics.serve(settings.metrics.host, settings.metrics.bronze_port)
    writer = BronzeWriter(settings, metrics, crash_after_commits)
    stop = stop or threading.Event()
    writer.run(stop, idle_exit_s=idle_exit_s)
    return writer
