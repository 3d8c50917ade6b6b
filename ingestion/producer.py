"""Kafka producer for trades and dead letters (confluent-kafka), with the hygiene the pipeline relies on.

- idempotence on and ``acks=all``: a retried send never duplicates or reorders within a partition;
- trades: the broker reports only failures (``delivery.report.only.error``), so a success costs no
  Python callback; what was acknowledged is what was sent minus what failed minus what is still
  queued. librdkafka's queue length also counts its own pending events (a refused connection
  queues an error event), so mid-stream the figure is a lower bound, and it is exact after a
  ``flush`` that drained the queue. Callbacks are served every ``POLL_EVERY`` sends, and whenever
  the local queue is full;
- dead letters are rare and go through their own producer with a report per message;
- a full local queue (``BufferError``) blocks the caller while polling (back-pressure) instead of
  dropping data;
- ``flush()`` on shutdown; the caller handles SIGINT/SIGTERM by stopping its loop first;
- a fatal error (the idempotent producer's "out of order sequence number" after a broker lost what
  it had acknowledged, or any ``KafkaError.fatal()``) leaves the client unusable: the queue is
  purged, a new client takes over and every trade not acknowledged is sent again (one log line and
  ``coinbase_producer_restarts_total``). Trades the broker acknowledged and then lost are gone from
  the producer's memory and cannot be resent: the bronze writer records the reset and the
  completeness check by trade id refills them from the exchange. Purged in-flight sends may have
  reached the broker, so a resend can duplicate a trade at a new offset (silver keeps one row per
  trade id);
- a blocked send (local queue full: broker away) gives up when ``should_stop()`` says the run is
  over, so ``--duration`` and signals end the process with its summary.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from infrastructure.kafka import producer_config
from infrastructure.settings import KafkaSettings
from ingestion.dead_letters import bounded_dead_letter
from ingestion.metrics import IngestMetrics

log = logging.getLogger(__name__)
BACKPRESSURE_POLL_S = 0.05
# serve delivery callbacks every this many trades: a poll per message costs more than the callbacks
POLL_EVERY = 1000
QUIET_LOG_LEVEL = 2  # syslog "critical": librdkafka's own log lines only for the worst
PURGE_WAIT_S = 10.0  # a replaced client's purge reports arrive within this (bounded)
# a trade refused with one of these is refused for good (resending cannot help); any other failure
# (purged, timed out, the sequence desynchronization of a broker that lost data) is sent again
_PERMANENT = frozenset(
    {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_MSG,
     KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError._INVALID_ARG,
     KafkaError.INVALID_RECORD}
)  # fmt: skip
# these mean the client itself is unusable: replace it before resending
_REPLACE = frozenset(
    {KafkaError._FATAL, KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, KafkaError.UNKNOWN_PRODUCER_ID}
)


class Interrupted(RuntimeError):
    """A send blocked on a full queue was abandoned because the run is stopping."""


def trade_producer_config(kafka: KafkaSettings) -> dict[str, object]:
    """Trades: delivery reports for failures only (the acknowledged count is derived, see above)."""
    return producer_config(kafka, **{"delivery.report.only.error": True})


class TradeProducer:
    """Sends wire-format trades to the trades topic and refused frames to the dead-letter topic."""

    def __init__(
        self,
        kafka: KafkaSettings,
        metrics: IngestMetrics,
        should_stop: Callable[[], bool] = lambda: False,
        debug: bool = False,
        topic: str | None = None,
    ) -> None:
        self._kafka = kafka
        # librdkafka logs every failed connection attempt; without debug the error callback's one
        # line per outage says it (its fatal errors are level 0 and always logged)
        self._quiet = {} if debug else {"log_level": QUIET_LOG_LEVEL}
        # the reference-price poller sends its events through the same hygiene to its own topic
        self._topic = topic or kafka.trades_topic
        self._dlq_topic = kafka.dlq_topic
        self._metrics = metrics
        self._should_stop = should_stop
        self.sent = 0  # trades handed to the client (a resend counts again)
        self.failed = 0  # messages given up on: the broker refused them for good
        self.dead_lettered = 0  # dead letters acknowledged
        self.restarts = 0  # clients replaced after a fatal error
        self.resent = 0  # trades sent again by a replacement client
        self._failed_trades = 0  # trade sends that were not acknowledged (resent or not)
        self._acked_reported = 0
        self._fatal: KafkaError | None = None
        self._resending = False
        # trades a purge handed back, waiting for the new client; never more than one queue's worth
        self._unacked: deque[tuple[bytes, bytes | None]] = deque()
        self._producer = self._new_trade_producer()
        self._dlq_fatal: KafkaError | None = None
        self._dlq_producer = self._new_dlq_producer()
        self._until_poll = POLL_EVERY
        self._drained = True  # no trade sent since a flush emptied the queue

    def _new_trade_producer(self) -> Producer:
        # the default callback: with reports for failures only, it runs for failed trades alone
        producer = Producer(
            {**trade_producer_config(self._kafka), "on_delivery": self._on_trade_failure,
             "error_cb": self._on_error, **self._quiet}
        )  # fmt: skip
        self._raw_produce = producer.produce
        return producer

    def _new_dlq_producer(self) -> Producer:
        return Producer({**producer_config(self._kafka), "error_cb": self._on_dlq_error, **self._quiet})

    @property
    def acked(self) -> int:
        """Trades the broker acknowledged: never more than the truth; exact after a draining flush."""
        pending = 0 if self._drained else len(self._producer) + len(self._unacked)
        return max(0, self.sent - self._failed_trades - pending)

    def send(self, value: bytes, key: bytes) -> None:
        """One trade (the per-message path: no optional arguments, bound methods resolved once)."""
        try:
            self._raw_produce(self._topic, value, key)
        except BufferError:
            self._produce_blocking(value, key)
        except KafkaException as exc:
            if not _unusable(exc.args[0]):  # refused for good (e.g. too large): never sent
                self.sent += 1
                self._failed_trades += 1
                self._refused(exc.args[0], key)
                return
            self._fatal = self._fatal or exc.args[0]  # the client went fatal since the last poll
            self._unacked.append((value, key))
            self._recover()  # sends (and counts) this trade too
            return
        self._drained = False
        self.sent += 1
        self._until_poll -= 1
        if not self._until_poll:
            self._until_poll = POLL_EVERY
            self.poll_trades(0)

    def _serve(self, timeout_s: float) -> None:
        """The current client's callbacks; a fatal client raises its error from every call, so the
        error only marks it for replacement (never escapes to the caller)."""
        try:
            self._producer.poll(timeout_s)
        except KafkaException as exc:
            self._fatal = self._fatal or exc.args[0]

    def poll_trades(self, timeout_s: float) -> None:
        self._serve(timeout_s)
        if not self._resending:
            if self._fatal is not None:
                self._recover()
            elif self._unacked:  # timed out on a live client: send again on it
                self._resend()
        if self._dlq_fatal is not None:
            error, self._dlq_fatal = self._dlq_fatal, None
            with contextlib.suppress(KafkaException):  # a fatal client raises its error from every call
                self._dlq_producer.flush(0)
            self._dlq_producer = self._new_dlq_producer()
            log.error("dead-letter producer fatal error (%s): new producer", error)

    def _produce_blocking(self, value: bytes, key: bytes | None) -> None:
        while True:
            try:
                self._raw_produce(self._topic, value, key)
                return
            except BufferError:
                # the local queue is full: wait for the broker to drain it rather than drop data
                if self._should_stop():
                    raise Interrupted("stopping while the producer queue is full") from None
                self.poll_trades(BACKPRESSURE_POLL_S)
            except KafkaException as exc:
                self._fatal = self._fatal or exc.args[0]
                self._recover()

    def _recover(self) -> None:
        """Replace a client that went fatal; send again every trade it did not get acknowledged."""
        self._replace()
        self._resend()

    def _replace(self) -> None:
        error, self._fatal = self._fatal, None
        old = self._producer
        with contextlib.suppress(KafkaException):  # a fatal client raises its error from every call
            old.purge(in_queue=True, in_flight=True)
        # serve every purge report: each puts its trade back into ``_unacked`` (bounded wait)
        deadline = time.monotonic() + PURGE_WAIT_S
        while len(old) and time.monotonic() < deadline:
            with contextlib.suppress(KafkaException):
                old.poll(0.05)
        if len(old):  # no report: whether the broker kept them is unknown; not counted as acked
            self._failed_trades += len(old)
            self.failed += len(old)
            log.error("%d trades of the replaced producer have no delivery report", len(old))
        self._fatal = None  # the old client's reports said it again; the new one starts clean
        self._producer = self._new_trade_producer()
        self.restarts += 1
        self._metrics.producer_restarts.inc()
        log.error("producer fatal error (%s): new producer, resending %d unacknowledged trades",
                  error, len(self._unacked))  # fmt: skip

    def _resend(self) -> None:
        """Send ``_unacked`` again, oldest first (one loop, never re-entered: reports served meanwhile
        only append to it)."""
        self._resending = True
        self._drained = False
        try:
            while self._unacked:
                if self._fatal is not None:
                    self._replace()
                value, key = self._unacked[0]
                try:
                    self._raw_produce(self._topic, value, key)
                except BufferError:
                    if self._should_stop():
                        raise Interrupted("stopping while the producer queue is full") from None
                    self._serve(BACKPRESSURE_POLL_S)
                    continue
                except KafkaException as exc:
                    if _unusable(exc.args[0]):
                        self._fatal = self._fatal or exc.args[0]
                    else:  # refused for good (already counted in _failed_trades by its report)
                        self._unacked.popleft()
                        self._refused(exc.args[0], key)
                    continue
                self._unacked.popleft()
                self.sent += 1
                self.resent += 1
                self._metrics.resent.inc()
        finally:
            self._resending = False

    def dead_letter(
        self, raw: bytes | str, reason: str, source: str | None, key: bytes | None = None
    ) -> None:
        value = raw.encode("utf-8", errors="surrogateescape") if isinstance(raw, str) else raw
        value, headers = bounded_dead_letter(value, reason, "ingest", source, self._kafka.max_message_bytes)
        _produce(self._dlq_producer, self._dlq_topic, value, key, headers, self._on_dead_letter_delivery)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = err  # acted on outside librdkafka's callback, by the next send or poll
        elif err.code() == KafkaError._ALL_BROKERS_DOWN:  # librdkafka keeps retrying by itself
            log.warning("kafka: %s; reconnecting (trades wait in the local queue)", err.str())
        else:
            log.debug("kafka client: %s", err)

    def _on_dlq_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._dlq_fatal = err

    def _on_trade_failure(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        self._failed_trades += 1
        if err.code() not in _PERMANENT:
            self._unacked.append((msg.value(), msg.key()))  # resent by the next poll
            if err.fatal() or err.code() in _REPLACE:
                self._fatal = self._fatal or err
        else:
            self._failed(err, msg)

    def _on_dead_letter_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.dead_lettered += 1
        else:
            self._failed(err, msg)

    def _failed(self, err: KafkaError, msg: Message) -> None:
        self._count_failure(err, msg.topic(), msg.key())

    def _refused(self, err: KafkaError, key: bytes | None) -> None:
        self._count_failure(err, self._topic, key)

    def _count_failure(self, err: KafkaError, topic: str | None, key: bytes | None) -> None:
        self.failed += 1
        self._metrics.delivery_failures.inc()
        log.error("broker did not acknowledge a message to %s (key %r): %s", topic, key, err)

    def poll(self, timeout_s: float = 0) -> None:
        self.poll_trades(timeout_s)
        try:
            self._dlq_producer.poll(0)
        except KafkaException as exc:  # replaced by the next poll_trades
            self._dlq_fatal = self._dlq_fatal or exc.args[0]
        self.report()

    def report(self) -> None:
        """Copy the counts into the metrics (kept off the per-message path)."""
        acked = self.acked
        self._metrics.produced.inc(max(0, acked - self._acked_reported))
        self._acked_reported = max(acked, self._acked_reported)
        self._metrics.queue_depth.set(len(self))

    def flush(self, timeout_s: float) -> int:
        """Wait (at most ``timeout_s``) for every queued message to be acknowledged, replacing a client
        that goes fatal meanwhile; return how many are still unsent."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                unsent_trades = self._producer.flush(max(0.0, deadline - time.monotonic()))
            except KafkaException as exc:  # went fatal while flushing: replace it and resend
                self._fatal = self._fatal or exc.args[0]
                unsent_trades = len(self._producer)
            if self._fatal is None or time.monotonic() >= deadline:
                break
            self._recover()
        unsent_trades += len(self._unacked)
        self._drained = unsent_trades == 0
        remaining = unsent_trades + self._dlq_producer.flush(max(0.0, deadline - time.monotonic()))
        self.report()
        if remaining:
            log.error("%d messages still unsent after %.0f s flush", remaining, timeout_s)
        return remaining

    def __len__(self) -> int:
        return len(self._producer) + len(self._unacked) + len(self._dlq_producer)


def _produce(producer: Producer, topic, value, key, headers, callback) -> None:
    while True:
        try:
            producer.produce(topic, value, key, headers=headers, on_delivery=callback)
            break
        except BufferError:
            # the local queue is full: wait for the broker to drain it rather than drop data
            producer.poll(BACKPRESSURE_POLL_S)
    producer.poll(0)


def _unusable(err: KafkaError) -> bool:
    """The client itself is broken (replace it), not just this message refused."""
    return err.fatal() or err.code() in _REPLACE
