"""Kafka producer for trades and dead letters (confluent-kafka), with the hygiene the pipeline relies on.

- idempotence on and ``acks=all``: a retried send never duplicates or reorders within a partition;
- a delivery callback counts what the broker acknowledged and what it refused;
- ``poll(0)`` after every send serves callbacks; a full local queue (``BufferError``) blocks the
  caller while polling (back-pressure) instead of dropping data;
- ``flush()`` on shutdown; the caller handles SIGINT/SIGTERM by stopping its loop first.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, Message, Producer

from infrastructure.settings import KafkaSettings
from ingestion.dead_letters import dead_letter_headers
from ingestion.metrics import IngestMetrics

log = logging.getLogger(__name__)
BACKPRESSURE_POLL_S = 0.05
# librdkafka retries a send across broker restarts until this expires (its default, stated here)
MESSAGE_TIMEOUT_MS = 300_000


def producer_config(kafka: KafkaSettings) -> dict[str, object]:
    """The client configuration; the benchmark's baseline uses the same one."""
    return {
        "bootstrap.servers": kafka.bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": kafka.producer_linger_ms,
        "queue.buffering.max.messages": kafka.producer_queue_max_messages,
        "message.max.bytes": kafka.max_message_bytes,
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
        "compression.type": "lz4",
    }


class TradeProducer:
    """Sends wire-format trades to the trades topic and refused frames to the dead-letter topic."""

    def __init__(self, kafka: KafkaSettings, metrics: IngestMetrics) -> None:
        self._producer = Producer(producer_config(kafka))
        self._topic = kafka.trades_topic
        self._dlq_topic = kafka.dlq_topic
        self._metrics = metrics
        self.acked = 0  # trades the broker acknowledged
        self.failed = 0  # messages the broker refused or that timed out
        self.dead_lettered = 0  # dead letters acknowledged
        self._acked_reported = 0
        self._raw_produce = self._producer.produce
        self._raw_poll = self._producer.poll
        self._trade_callback = self._on_trade_delivery

    def send(self, value: bytes, key: bytes) -> None:
        """One trade (the per-message path: no optional arguments, bound methods resolved once)."""
        try:
            self._raw_produce(self._topic, value, key, on_delivery=self._trade_callback)
        except BufferError:
            self._produce(self._topic, value, key, None, self._trade_callback)
            return
        self._raw_poll(0)

    def dead_letter(
        self, raw: bytes | str, reason: str, source: str | None, key: bytes | None = None
    ) -> None:
        value = raw.encode("utf-8", errors="surrogateescape") if isinstance(raw, str) else raw
        headers = dead_letter_headers(reason, "ingest", source)
        self._produce(self._dlq_topic, value, key, headers, self._on_dead_letter_delivery)

    def _produce(self, topic, value, key, headers, callback) -> None:
        producer = self._producer
        while True:
            try:
                producer.produce(topic, value, key, headers=headers, on_delivery=callback)
                break
            except BufferError:
                # the local queue is full: wait for the broker to drain it rather than drop data
                producer.poll(BACKPRESSURE_POLL_S)
        producer.poll(0)

    def _on_trade_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.acked += 1
        else:
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
        self.report()

    def report(self) -> None:
        """Copy the callback counts into the metrics (kept off the per-message path)."""
        self._metrics.produced.inc(self.acked - self._acked_reported)
        self._acked_reported = self.acked
        self._metrics.queue_depth.set(len(self._producer))

    def flush(self, timeout_s: float) -> int:
        """Wait for every queued message to be acknowledged; return how many are still unsent."""
        remaining = self._producer.flush(timeout_s)
        self.report()
        if remaining:
            log.error("%d messages still unsent after %.0f s flush", remaining, timeout_s)
        return remaining

    def __len__(self) -> int:
        return len(self._producer)
