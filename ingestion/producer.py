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
- ``flush()`` on shutdown; the caller handles SIGINT/SIGTERM by stopping its loop first.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, Message, Producer

from infrastructure.kafka import producer_config
from infrastructure.settings import KafkaSettings
from ingestion.dead_letters import dead_letter_headers
from ingestion.metrics import IngestMetrics

log = logging.getLogger(__name__)
BACKPRESSURE_POLL_S = 0.05
# serve delivery callbacks every this many trades: a poll per message costs more than the callbacks
POLL_EVERY = 1000


def trade_producer_config(kafka: KafkaSettings) -> dict[str, object]:
    """Trades: delivery reports for failures only (the acknowledged count is derived, see above)."""
    return producer_config(kafka, **{"delivery.report.only.error": True})


class TradeProducer:
    """Sends wire-format trades to the trades topic and refused frames to the dead-letter topic."""

    def __init__(self, kafka: KafkaSettings, metrics: IngestMetrics) -> None:
        # the default callback: with reports for failures only, it runs for failed trades alone
        self._producer = Producer({**trade_producer_config(kafka), "on_delivery": self._on_trade_failure})
        self._dlq_producer = Producer(producer_config(kafka))
        self._topic = kafka.trades_topic
        self._dlq_topic = kafka.dlq_topic
        self._metrics = metrics
        self.sent = 0  # trades handed to the client
        self.failed = 0  # messages the broker refused or that timed out
        self.dead_lettered = 0  # dead letters acknowledged
        self._failed_trades = 0
        self._acked_reported = 0
        self._raw_produce = self._producer.produce
        self._until_poll = POLL_EVERY
        self._drained = True  # no trade sent since a flush emptied the queue

    @property
    def acked(self) -> int:
        """Trades the broker acknowledged: never more than the truth; exact after a draining flush."""
        pending = 0 if self._drained else len(self._producer)
        return max(0, self.sent - self._failed_trades - pending)

    def send(self, value: bytes, key: bytes) -> None:
        """One trade (the per-message path: no optional arguments, bound methods resolved once)."""
        try:
            self._raw_produce(self._topic, value, key)
        except BufferError:
            _produce(self._producer, self._topic, value, key, None, None)
        self._drained = False
        self.sent += 1
        self._until_poll -= 1
        if not self._until_poll:
            self._until_poll = POLL_EVERY
            self._producer.poll(0)

    def dead_letter(
        self, raw: bytes | str, reason: str, source: str | None, key: bytes | None = None
    ) -> None:
        value = raw.encode("utf-8", errors="surrogateescape") if isinstance(raw, str) else raw
        headers = dead_letter_headers(reason, "ingest", source)
        _produce(self._dlq_producer, self._dlq_topic, value, key, headers, self._on_dead_letter_delivery)

    def _on_trade_failure(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failed_trades += 1
            self._failed(err, msg)

    def _on_dead_letter_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.dead_lettered += 1
        else:
            self._failed(err, msg)

    def _failed(self, err: KafkaError, msg: Message) -> None:
        self.failed += 1
        self._metrics.delivery_failures.inc()
        log.error("broker did not acknowledge a message to %s (key %r): %s", msg.topic(), msg.key(), err)

    def poll(self, timeout_s: float = 0) -> None:
        self._producer.poll(timeout_s)
        self._dlq_producer.poll(0)
        self.report()

    def report(self) -> None:
        """Copy the counts into the metrics (kept off the per-message path)."""
        acked = self.acked
        self._metrics.produced.inc(max(0, acked - self._acked_reported))
        self._acked_reported = max(acked, self._acked_reported)
        self._metrics.queue_depth.set(len(self))

    def flush(self, timeout_s: float) -> int:
        """Wait for every queued message to be acknowledged; return how many are still unsent."""
        unsent_trades = self._producer.flush(timeout_s)
        self._drained = unsent_trades == 0
        remaining = unsent_trades + self._dlq_producer.flush(timeout_s)
        self.report()
        if remaining:
            log.error("%d messages still unsent after %.0f s flush", remaining, timeout_s)
        return remaining

    def __len__(self) -> int:
        return len(self._producer) + len(self._dlq_producer)


def _produce(producer: Producer, topic, value, key, headers, callback) -> None:
    while True:
        try:
            producer.produce(topic, value, key, headers=headers, on_delivery=callback)
            break
        except BufferError:
            # the local queue is full: wait for the broker to drain it rather than drop data
            producer.poll(BACKPRESSURE_POLL_S)
    producer.poll(0)
