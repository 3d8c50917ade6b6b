"""The bronze writer's I/O loop: consume trades, append batches to ``bronze.trades``, exactly once.

One writer, one instance per stream (``streams``): ``lakehouse bronze --stream reference_prices``
runs the same loop from ``kafka.reference_topic`` into ``bronze.reference_prices``; what differs is
the stream's topic, table, row format and consumer group, never the exactly-once logic below.

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

Outages are retried without end (``tenacity``: capped exponential backoff, one line per retry, the
traceback only with ``settings.debug``); a stop abandons the batch in hand, which loses nothing
because its offsets were never recorded. A broker whose log went backwards (see ``resets``) is
checked for after every disconnect and out-of-range fetch, before any message fetched since is
taken.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from operator import itemgetter

import pyarrow as pa
import pyarrow.compute as pc
import tenacity
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka import Message as KafkaMessage
from pyiceberg.exceptions import CommitFailedException, NoSuchNamespaceError, NoSuchTableError
from pyiceberg.expressions import And, EqualTo
from pyiceberg.table import Table

from infrastructure.catalog import load_catalog
from infrastructure.kafka import consumer_config, producer_config
from infrastructure.retrying import one_line, until_stopped
from infrastructure.settings import Settings
from ingestion.dead_letters import bounded_dead_letter
from ingestion.producer import QUIET_LOG_LEVEL
from processing.bronze.metrics import BronzeMetrics
from processing.bronze.resets import (
    RESETS_PROPERTY,
    Reset,
    encode_resets,
    first_divergent,
    recorded_resets,
    snapshot_summaries,
)
from processing.bronze.rows import (
    OFFSETS_PROPERTY,
    Batch,
    Consumed,
    Offsets,
    encode_offsets,
    merge_offsets,
    offsets_in_rows,
    recorded_offsets,
)
from processing.bronze.streams import TRADES, Stream
from processing.maintenance import StreamingRetention

log = logging.getLogger(__name__)
STAGE = "bronze"
# conflicts with another writer are resolved by re-reading at once; this many in a row is an error
MAX_CONFLICTS = 20
LAG_EVERY_S = 1.0
MAX_SEEK_FAILURES = 10  # turns of the loop before a partition that cannot be moved makes it rejoin
LIVE_END_EVERY_S = 5.0  # ask the broker for each owned partition's end this often (a reset check)
# librdkafka's signs that the broker went away: its log may have gone backwards meanwhile
_BROKER_LOST = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN})
_OUT_OF_RANGE = frozenset({KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE})
CONSUME_BATCH = 5_000
NO_RETRY = ("commit.retry.num-retries", "0")
# noida-db answers a fetch with the whole backlog of each partition, ignoring fetch.max.bytes;
# librdkafka's 100 MB default then refuses it and the consumer stalls. But it does cut a
# partition's answer at max.partition.fetch.bytes: small fetches and a small prefetch queue keep
# the broker from copying out a whole backlog at once (its peak over its resting size fell from
# 234 to 140 MiB draining 500k trades) and the writer from buffering one, at no measurable cost
FETCH_LIMITS = {
    "receive.message.max.bytes": 1_000_000_000,
    "max.partition.fetch.bytes": 262_144,
    "fetch.max.bytes": 1_048_576,
    "queued.max.messages.kbytes": 8_192,
}
_SECOND = itemgetter(1)  # of confluent's (timestamp type, timestamp) pair


def disable_commit_retries(table: Table) -> None:
    """Make pyiceberg surface commit conflicts instead of re-applying a stale batch (tables created
    before the contract carried this property get it here)."""
    if table.properties.get(NO_RETRY[0]) != NO_RETRY[1]:
        with table.transaction() as tx:
            tx.set_properties({NO_RETRY[0]: NO_RETRY[1]})


class DeliveryFailed(RuntimeError):
    pass


class Abandoned(RuntimeError):
    """The writer is stopping during an outage: the batch in hand is dropped, unrecorded (its
    messages are read again by the next start)."""


class BronzeWriter:
    """One writer process. ``crash_after_commits`` (tests only) SIGKILLs this process right after its
    Nth table commit, before the consumer-group commit: the worst moment for exactly-once."""

    def __init__(
        self,
        settings: Settings,
        metrics: BronzeMetrics | None = None,
        crash_after_commits: int | None = None,
        retention: StreamingRetention | None = None,
        stream: Stream = TRADES,
    ) -> None:
        self.settings = settings
        self.stream = stream
        self.topic = stream.topic(settings.kafka)
        self.group = settings.bronze.consumer_group + stream.group_suffix
        # tags each closed hour and expires old snapshots within its appends (bounded commit cost)
        self.retention = retention or StreamingRetention(settings.maintenance)
        self.metrics = metrics or BronzeMetrics()
        self.crash_after_commits = crash_after_commits
        self.commits = 0
        self.table = load_catalog(settings).load_table(stream.identifier)
        disable_commit_retries(self.table)
        self.batch = Batch(stream.rows)
        # the table's offsets as of the snapshot this writer last read or committed; None: re-read
        # before the next append. Our own commits keep it current, and a commit by anyone else is
        # refused (pyiceberg asserts the snapshot the append is based on), which clears it.
        self.recorded: Offsets | None = None
        self.positions: Offsets = {}  # next offset this consumer will read, per assigned partition
        self.resets: list[Reset] = []  # recorded in the table (carried forward by every append)
        self.pending_resets: dict[tuple[str, int], Reset] = {}  # found, not yet in the table
        self.stopping = threading.Event()  # set by run(): abandon retries of an outage
        self._verify = False  # the broker went away: check its log before taking more messages
        self._reseek = False  # a partition could not be moved to its position yet
        self._seek_failures = 0
        self._seen_end: Offsets = {}  # highest end offset seen per partition (what a reset lost)
        self._lag_due = self._live_due = 0.0
        self._appender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bronze-append")
        self._in_flight: Future[Offsets] | None = None  # the append the thread is running
        self.consumer = Consumer(
            consumer_config(
                settings.kafka,
                self.group,
                **{
                    "group.instance.id": settings.bronze.instance_id,
                    # never jump on our own: an offset out of range means the log went backwards,
                    # which the writer checks and records (see ``_check_logs``)
                    "auto.offset.reset": "error",
                    "error_cb": self._on_client_error,
                    # librdkafka logs each failed connection attempt; the error callback says it once
                    **({} if settings.debug else {"log_level": QUIET_LOG_LEVEL}),
                    "enable.auto.offset.store": False,
                    "enable.partition.eof": False,
                    # the table commit can take seconds; do not get kicked out of the group meanwhile
                    "max.poll.interval.ms": 300_000,
                    # a crashed writer's partitions move to a live one after this long, not the 45 s default
                    "session.timeout.ms": 6_000,
                    "heartbeat.interval.ms": 1_000,
                    **FETCH_LIMITS,
                },
            )
        )
        # dead letters go out like the producer's: idempotent, compressed, same timeouts
        self.dlq = Producer(producer_config(settings.kafka, **{"linger.ms": 5}))
        self._dlq_failures: list[str] = []

    def _on_client_error(self, err: KafkaError) -> None:
        if err.code() in _BROKER_LOST:
            self._verify = True
        # one line when the broker is lost; librdkafka's per-attempt connect errors only with debug
        if err.code() == KafkaError._ALL_BROKERS_DOWN or err.fatal():
            log.warning("kafka: %s; reconnecting", err.str())
        else:
            log.debug("kafka: %s", err.str())

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
        bronze = self.settings.bronze
        self._subscribe()
        last_message = time.monotonic()
        watcher = threading.Thread(target=lambda: (stop.wait(), self.stopping.set()), daemon=True)
        watcher.start()
        try:
            while not stop.is_set():
                wanted = max(1, min(CONSUME_BATCH, bronze.flush_rows - len(self.batch)))
                messages = self.consumer.consume(num_messages=wanted, timeout=0.2)
                now = time.monotonic()
                if self._verify or self._reseek:
                    messages = self._verified(messages)
                if messages:
                    last_message = now
                    self._take(messages)
                if self.batch.due(bronze.flush_rows, bronze.flush_seconds, time.monotonic()):
                    self.flush(wait=False)
                if now >= self._lag_due:
                    self._lag_due = now + LAG_EVERY_S
                    live = now >= self._live_due
                    if live:
                        self._live_due = now + LIVE_END_EVERY_S
                    self._update_lag(live)
                if idle_exit_s is not None and now - last_message > idle_exit_s:
                    break
            self.flush()
        except Abandoned as exc:
            log.warning("%s", exc)
        finally:
            self.stopping.set()
            with contextlib.suppress(Abandoned):
                self.consumer.close()  # hands partitions over (a last flush) while the appender lives
            self._appender.shutdown(wait=True)
            self.dlq.flush(10)

    def _subscribe(self) -> None:
        self.consumer.subscribe([self.topic], on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_revoke)  # fmt: skip

    def _take(self, messages: list[KafkaMessage]) -> None:
        ingest_time = datetime.now(UTC)
        errors = list(map(KafkaMessage.error, messages))
        if any(errors):
            for error in filter(None, errors):
                if error.code() in _OUT_OF_RANGE:
                    self._verify = True  # checked before the next messages are taken
                elif error.code() != KafkaError._PARTITION_EOF:
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
            batch, self.batch = self.batch, Batch(self.stream.rows)
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
        """Append ``batch`` (minus what the table already holds) with its offsets; on the append thread.

        Storage, catalog or DLQ unavailable: keep the batch and retry until it lands or the writer
        stops; the commit may have landed before the error, so the table is re-read first."""
        started = time.perf_counter()
        bronze = self.settings.bronze
        retrying = until_stopped(
            "bronze append", log, self.stopping.is_set, bronze.retry_max_s, self.settings.debug
        )
        try:
            recorded, written = retrying(self._append_resolving_conflicts, batch)
        except Exception as exc:
            if not self.stopping.is_set():
                raise
            raise Abandoned(
                f"stopping during an outage; batch of {len(batch)} messages left in Kafka"
            ) from exc
        self.metrics.commit_duration.observe(time.perf_counter() - started)
        if written is not None:
            self.commits += 1
            self.metrics.table_snapshots.set(len(self.table.snapshots()))
            if self.crash_after_commits is not None and self.commits >= self.crash_after_commits:
                os.kill(os.getpid(), signal.SIGKILL)  # test hook: die between table and group commit
        return recorded

    def _append_resolving_conflicts(self, batch: Batch) -> tuple[Offsets, Batch | None]:
        for attempt in range(MAX_CONFLICTS):
            try:
                return self._append_once(batch)
            except CommitFailedException as exc:
                self.recorded = None
                self.metrics.conflicts.inc()
                log.info("commit conflict (attempt %d), re-reading the table: %s", attempt + 1, exc)
            except Exception:
                self.recorded = None  # the commit may have landed: re-read before the next try
                self.metrics.errors.labels("commit").inc()
                raise
        raise RuntimeError(f"{MAX_CONFLICTS} commit conflicts in a row")

    def _reread(self) -> Offsets:
        self.table.refresh()
        # the resets travel in the same summary as the offsets: the newest one that has them
        newest = next((x for x in snapshot_summaries(self.table) if OFFSETS_PROPERTY in x), {})
        self.recorded = recorded_offsets([newest])
        self.resets = recorded_resets([newest])
        if not self.recorded and self.table.current_snapshot() is not None:
            # rows but no summary with offsets (a commit that carried none, its parents expired):
            # the data says what is written; reading from the start would write it all again
            rows = self.table.scan(
                selected_fields=("kafka_topic", "kafka_partition", "kafka_offset")
            ).to_arrow()
            self.recorded = offsets_in_rows(
                rows["kafka_topic"].to_pylist(),
                rows["kafka_partition"].to_pylist(),
                rows["kafka_offset"].to_pylist(),
            )
            if self.recorded:
                log.warning(
                    "bronze: no snapshot summary holds the Kafka offsets; %d partitions resumed from the data",
                    len(self.recorded),
                )
        # a reset found but not yet committed applies to what was just read (unless already in it)
        for tp, reset in self.pending_resets.items():
            if self.recorded.get(tp) == reset.old_next:
                self.recorded[tp] = reset.new_start
        return self.recorded

    def _append_once(self, batch: Batch) -> tuple[Offsets, Batch | None]:
        recorded = self.recorded if self.recorded is not None else self._reread()
        pending = batch.without_covered(recorded)
        if not pending.next_offsets:
            return recorded, None  # another writer already holds all of it
        self._dead_letter(pending)
        offsets = merge_offsets(recorded, pending.next_offsets)
        properties = {OFFSETS_PROPERTY: encode_offsets(offsets)}
        resets = self.resets + list(self.pending_resets.values())
        if resets:
            properties[RESETS_PROPERTY] = encode_resets(resets)
        # the append, plus the hour's tag and snapshot expiry when due, in one commit
        self.retention.append(self.table, pending.to_arrow(), properties)
        self.recorded = offsets  # the append moved self.table to the snapshot it committed
        if self.pending_resets:
            self.resets, self.pending_resets = resets, {}
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
            value, headers = bounded_dead_letter(
                poison.message.value, poison.reason, STAGE, None,
                self.settings.kafka.max_message_bytes, poison.origin,
            )  # fmt: skip
            self.dlq.produce(
                self.settings.kafka.dlq_topic,
                value=value,
                key=poison.message.key,
                headers=headers,
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

    # ------------------------------------------------------------ a log that went backwards

    def _verified(self, messages: list[KafkaMessage]) -> list[KafkaMessage]:
        """None of ``messages``: every owned partition is checked, then read again from its position
        (the first offset not taken, or where a reset log departs from bronze)."""
        if self._verify:
            try:
                self._check_logs()
                self._verify = False
            except (KafkaException, RuntimeError) as exc:
                log.warning("broker not answering yet, checking its log again shortly: %s", one_line(exc))
                time.sleep(0.5)
        failed = []
        for tp, n in self.positions.items():
            try:
                self.consumer.seek(TopicPartition(tp[0], tp[1], n))
            except KafkaException:  # not fetchable yet (a rebalance), or never again (a recreated topic)
                failed.append(tp)
        self._reseek = bool(failed)
        if failed:
            self._seek_failures += 1
            time.sleep(0.2)
        if self._seek_failures >= MAX_SEEK_FAILURES:
            # the client still holds the deleted topic's partitions: join the group afresh; the
            # assignment seeks to the table's offsets with the reset applied (see ``_reread``)
            log.warning("cannot move %s to the offsets bronze resumes from; rejoining the group", failed)
            self._seek_failures, self._reseek = 0, False
            self.flush()
            self.consumer.unsubscribe()
            self.positions.clear()
            self._subscribe()
        elif not failed:
            self._seek_failures = 0
        return []

    def _check_logs(self) -> set[tuple[str, int]]:
        """Compare each owned partition's log with what bronze holds; on a reset, record it (with the
        next append), count it and read on from where the logs part. Returns the reset partitions."""
        self.flush()  # the table must be current: the append thread may be committing
        recorded = self.recorded if self.recorded is not None else self._reread()
        reset: set[tuple[str, int]] = set()
        probe = Consumer(consumer_config(self.settings.kafka, f"{self.group}-probe"))
        try:
            for tp in list(self.positions):
                n = recorded.get(tp, 0)
                low, high = probe.get_watermark_offsets(TopicPartition(*tp), timeout=5)
                # below the log's start (retention removed it) there is nothing to compare with
                if n <= 0 or (high >= n and (n - 1 < low or self._same(probe, tp, n - 1))):
                    seen = self._seen_end.get(tp, 0)
                    if high < seen:  # it went back, but not below bronze: nothing to re-read
                        self._reset(tp, n, n, high)
                        reset.add(tp)
                    continue
                start = first_divergent(low, min(high, n), lambda o, tp=tp: self._same(probe, tp, o))
                self._reset(tp, n, start, high)
                reset.add(tp)
        finally:
            probe.close()
        return reset

    def _reset(self, tp: tuple[str, int], old_next: int, start: int, end: int) -> None:
        seen = self._seen_end.get(tp)
        found = Reset(tp[0], tp[1], old_next, start, end, seen, datetime.now(UTC).isoformat())
        self.pending_resets[tp] = found
        assert self.recorded is not None
        self.recorded[tp] = start
        self.positions[tp] = start
        self._seen_end[tp] = end
        self.metrics.resets.inc()
        if found.lost:
            self.metrics.reset_lost.inc(found.lost)
        log.error(
            "kafka log of %s/%d went backwards: bronze had up to offset %d, the log now ends at %d and "
            "departs from bronze at %d; reading on from %d (lost before bronze read them: %s; "
            "the trade-id completeness check refills them)",
            tp[0], tp[1], old_next, end, start, start, "unknown" if found.lost is None else found.lost,
        )  # fmt: skip

    def _same(self, probe: Consumer, tp: tuple[str, int], offset: int) -> bool:
        """Is the message at ``offset`` of the log the one bronze holds there (same Kafka timestamp)?"""
        probe.assign([TopicPartition(tp[0], tp[1], offset)])
        message = None
        for _ in range(20):  # bounded: 20 x 0.5 s
            got = probe.consume(1, timeout=0.5)
            if got and got[0].error() is None:
                message = got[0]
                break
        if message is None or message.offset() != offset:
            raise RuntimeError(f"could not read {tp[0]}/{tp[1]} at offset {offset}")
        rows = self.table.scan(
            row_filter=And(
                EqualTo("kafka_topic", tp[0]),
                EqualTo("kafka_partition", tp[1]),
                EqualTo("kafka_offset", offset),
            ),
            selected_fields=("kafka_timestamp", "ingest_time"),
        ).to_arrow()
        if rows.num_rows == 0:  # bronze holds no row there: only a dead letter can be "the same"
            return not self.stream.rows.is_row(message.value())
        newest = rows.sort_by([("ingest_time", "descending")])["kafka_timestamp"][0]
        return pc.cast(newest, pa.int64()).as_py() // 1000 == message.timestamp()[1]

    def _update_lag(self, live: bool) -> None:
        """Lag of every owned partition against the table (0 once everything is written), and the
        highest end offset seen (what a later reset may have lost). With ``live``, the end is asked of
        the broker rather than taken from the last fetch: a log that now ends below what bronze holds
        or below what the writer saw (a recreated topic, a broker back with less; a fetch beyond the
        end may just come back empty) is checked before anything else is taken."""
        recorded = self.recorded or {}
        for tp in list(self.positions):
            try:
                if live:
                    _low, high = self.consumer.get_watermark_offsets(TopicPartition(*tp), timeout=2)
                else:
                    _low, high = self.consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)
            except KafkaException:
                if live:
                    break  # the broker is away: do not wait on it once per partition
                continue
            if high < 0:
                continue
            seen = self._seen_end.get(tp, 0)
            if live and (high < seen or high < recorded.get(tp, 0)):
                self._verify = True
            self._seen_end[tp] = max(high, seen)
            self.metrics.lag.labels(str(tp[1])).set(max(0, high - recorded.get(tp, 0)))

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
    stream: Stream = TRADES,
) -> BronzeWriter:
    metrics = BronzeMetrics()
    if serve_metrics:
        metrics.serve(settings.metrics.host, stream.port(settings.metrics))
    stop = stop or threading.Event()

    # storage or catalog not up yet: wait for it (a missing table is the user's to fix: no retry)
    writer = until_stopped(
        "bronze writer start", log, stop.is_set, settings.bronze.retry_max_s, settings.debug,
        retry=tenacity.retry_if_not_exception_type((NoSuchTableError, NoSuchNamespaceError)), sleep=stop.wait,
    )(BronzeWriter, settings, metrics, crash_after_commits, None, stream)  # fmt: skip
    writer.run(stop, idle_exit_s=idle_exit_s)
    return writer
