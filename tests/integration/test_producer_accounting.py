"""The trade producer's counts are exact although the broker reports only failures.

Trades are sent with ``delivery.report.only.error``: no callback per acknowledged trade, so
``acked`` is derived (sent - failed - still queued; librdkafka's queue length also counts its own
error events, so the figure is a lower bound until a flush drains the queue). These tests pin that derivation down against a
real broker, and against no broker at all (none acked; a trade that timed out is kept to be sent
again, so the flush at shutdown reports it unsent, while a dead letter that timed out is failed).
"""

from __future__ import annotations

from infrastructure.bootstrap import ensure_topics
from infrastructure.services import free_port
from infrastructure.settings import Settings
from ingestion.metrics import IngestMetrics
from ingestion.producer import POLL_EVERY, TradeProducer
from tests.fixtures.ingest import ingest_settings, read_topic
from tests.fixtures.services import Broker


def test_acknowledged_trades_and_dead_letters_are_counted_exactly(broker: Broker) -> None:
    settings = ingest_settings(broker)
    ensure_topics(settings.kafka)
    metrics = IngestMetrics()
    producer = TradeProducer(settings.kafka, metrics)
    n = 3 * POLL_EVERY + 7  # crosses the poll cadence, and ends between two polls
    for i in range(n):
        producer.send(b'{"n": %d}' % i, b"coinbase:BTC-USD")
    producer.dead_letter(b"not json", "not JSON: test", "synthetic")
    assert producer.flush(30) == 0
    assert (producer.sent, producer.acked, producer.failed, producer.dead_lettered) == (n, n, 0, 1)
    assert metrics.registry.get_sample_value("coinbase_messages_produced_total") == n
    assert len(read_topic(broker.bootstrap, settings.kafka.trades_topic)) == n


def test_without_a_broker_no_trade_is_acked_and_every_one_is_kept() -> None:
    settings = Settings(
        _env_file=None,
        kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}", "producer_message_timeout_ms": 1_000},
    )
    metrics = IngestMetrics()
    producer = TradeProducer(settings.kafka, metrics)
    for i in range(25):
        producer.send(b"%d" % i, b"coinbase:BTC-USD")
    assert producer.acked == 0  # queued, and librdkafka's error events must not make it negative
    producer.dead_letter(b"garbage", "not JSON: test", "synthetic")
    # each timed out and was reported; the trades wait to be sent again, so they are unsent
    assert producer.flush(20) == 25
    assert (producer.sent, producer.acked, producer.failed, producer.dead_lettered) == (25, 0, 1, 0)
    assert metrics.registry.get_sample_value("coinbase_delivery_failures_total") == 1
    assert metrics.registry.get_sample_value("coinbase_messages_produced_total") == 0
    producer.poll(0)  # a running ingest sends them again (here: into the same void)
    assert (producer.resent, len(producer)) == (25, 25)
