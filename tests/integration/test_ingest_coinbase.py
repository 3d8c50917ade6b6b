"""The live-feed path against a fake Coinbase (real WebSocket + REST protocol) and a real broker:
gaps are backfilled, garbage is dead-lettered, a broker restart loses nothing, the watchdog reconnects."""

from __future__ import annotations

import orjson

from ingestion.dead_letters import read_dead_letter_headers
from ingestion.runner import RunOptions
from tests.fixtures.coinbase import FakeCoinbase
from tests.fixtures.ingest import IngestThread, ingest_settings, read_topic, trade_ids, wait_until
from tests.fixtures.services import Broker

LIVE = RunOptions(source="coinbase", serve_metrics=False, flush_timeout_s=30)


def expected(fake: FakeCoinbase, since: dict[str, int] | None = None) -> dict[str, set[int]]:
    """Trade ids the client must publish: from ``since[product]`` (the last trade before it connected,
    which Coinbase sends as ``last_match``) onward."""
    return {p: {i for i in fake.trade_ids(p) if i >= (since or {}).get(p, 0)} for p in fake.products}


def all_reached(broker: Broker, topic: str, fake: FakeCoinbase, since: dict[str, int] | None = None) -> bool:
    found = trade_ids(read_topic(broker.bootstrap, topic)) if _has_messages(broker, topic) else {}
    return all(ids <= set(found.get(p, [])) for p, ids in expected(fake, since).items())


def _has_messages(broker: Broker, topic: str) -> bool:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "probe"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return any(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] > 0 for p in parts)
    finally:
        c.close()


def test_disconnect_and_skipped_range_are_backfilled(broker: Broker, fake_coinbase: FakeCoinbase) -> None:
    fake = fake_coinbase
    settings = ingest_settings(broker, fake)
    topic = settings.kafka.trades_topic
    fake.trade("BTC-USD", 5)  # history from before we connect: not ours to fill
    since = {"BTC-USD": fake.trade_ids("BTC-USD")[-1]}
    run = IngestThread(settings, LIVE).start()
    try:
        fake.wait_for_subscriptions(1)
        fake.trade("BTC-USD", 20)
        fake.trade("ETH-USD", 10)
        fake.skip(7)
        fake.trade("BTC-USD", 7)  # happen, but never sent on the socket
        fake.trade("BTC-USD", 3)  # the next one reveals the jump
        fake.drop_connections()
        fake.trade("BTC-USD", 15)  # while the client is away
        fake.trade("ETH-USD", 15)
        fake.wait_for_subscriptions(2)
        fake.trade("BTC-USD", 5)
        fake.trade("ETH-USD", 5)
        wait_until(lambda: all_reached(broker, topic, fake, since), 45, "every trade id on the topic")
    finally:
        summary = run.stop()
    messages = read_topic(broker.bootstrap, topic)
    found = trade_ids(messages)
    for product, ids in expected(fake, since).items():
        # every id the exchange made since we connected (and the last one before it, sent as last_match)
        assert ids - set(found[product]) == set()
        assert min(found[product]) == min(ids)
    sources = {orjson.loads(m.value())["source"] for m in messages}
    assert sources == {"ws", "backfill"}
    assert summary.counts.gaps >= 2 and summary.counts.backfilled >= 7 + 15 + 15 - 2
    assert any("after" in q for q in fake.rest_requests)
    assert run.counter("coinbase_reconnects_total") >= 1
    assert run.counter("coinbase_gaps_detected_total", product="BTC-USD") >= 2
    assert summary.unsent == 0 and summary.failed == 0
    # each product keeps one partition, so its ws trades stay in exchange order
    for product in fake.products:
        keys = {m.partition() for m in messages if m.key() == f"coinbase:{product}".encode()}
        assert len(keys) == 1


def test_garbage_is_dead_lettered_with_a_reason_and_the_feed_goes_on(
    broker: Broker, fake_coinbase: FakeCoinbase
) -> None:
    fake = fake_coinbase
    settings = ingest_settings(broker, fake, coinbase={"max_frame_bytes": 2048})
    good = orjson.dumps(
        {"type": "match", "trade_id": 1, "sequence": 1, "time": "2024-05-01T12:00:00.000001Z",
         "product_id": "BTC-USD", "size": "1.0", "price": "10.00", "side": "buy"}
    )  # fmt: skip
    garbage = {
        b"this is not json": "not JSON",
        good.replace(b'"10.00"', b'"0"'): "non-positive price",
        good.replace(b'"1.0"', b'"-2"'): "non-positive size",
        good.replace(b',"side":"buy"', b""): "missing fields: side",
        good.replace(b"BTC-USD", b"XRP-USD"): "unknown product 'XRP-USD'",
        b'{"type":"no_such_channel","product_id":"BTC-USD"}': "unknown frame type 'no_such_channel'",
        b'{"type":"match","pad":"' + b"x" * 3000 + b'"}': "oversized frame",
    }
    run = IngestThread(settings, LIVE).start()
    try:
        fake.wait_for_subscriptions(1)
        for raw in garbage:
            fake.send_raw(raw)
        fake.trade("BTC-USD", 3)
        wait_until(lambda: all_reached(broker, settings.kafka.trades_topic, fake), 30, "valid trades")
        wait_until(lambda: _has_messages(broker, settings.kafka.dlq_topic), 30, "dead letters")
        wait_until(lambda: len(read_topic(broker.bootstrap, settings.kafka.dlq_topic)) >= len(garbage), 30)
    finally:
        summary = run.stop()
    dead = read_topic(broker.bootstrap, settings.kafka.dlq_topic)
    assert len(dead) == len(garbage)
    by_value = {m.value(): read_dead_letter_headers(m.headers()) for m in dead}
    for raw, reason in garbage.items():
        headers = by_value[raw]  # the original bytes, untouched
        assert reason in headers["dlq.reason"]
        assert headers["dlq.stage"] == "ingest" and headers["dlq.source"] == "ws"
        assert headers["dlq.time"].endswith("Z")
    assert summary.counts.dead_letters == len(garbage) and summary.dead_lettered == len(garbage)
    assert run.counter("coinbase_dead_letters_total") == len(garbage)
    assert run.counter("coinbase_messages_received_total", type="invalid") == len(garbage)


def test_broker_stopped_and_restarted_mid_stream_loses_no_trade(
    broker: Broker, fake_coinbase: FakeCoinbase
) -> None:
    fake = fake_coinbase
    settings = ingest_settings(broker, fake)
    topic = settings.kafka.trades_topic
    run = IngestThread(settings, LIVE).start()
    try:
        fake.wait_for_subscriptions(1)
        fake.trade("BTC-USD", 50)
        wait_until(lambda: run.ingestor and _acked(run) >= 50, 30, "first trades acknowledged")
        broker.stop()
        try:
            for _ in range(10):  # trades keep coming while the broker is down
                fake.trade("BTC-USD", 10)
                fake.trade("ETH-USD", 10)
        finally:
            broker.start()
        fake.trade("ETH-USD", 30)
        wait_until(lambda: _acked(run) >= 50 + 200 + 30, 90, "every trade acknowledged after the restart")
    finally:
        summary = run.stop()
    found = trade_ids(read_topic(broker.bootstrap, topic))
    for product in fake.products:
        assert sorted(set(found[product])) == fake.trade_ids(product)
        # idempotent producer: retries across the restart wrote nothing twice
        assert len(found[product]) == len(set(found[product]))
    assert summary.acked == 280 and summary.failed == 0 and summary.unsent == 0


def _acked(run: IngestThread) -> int:
    return int(run.counter("coinbase_messages_produced_total"))


def test_silent_socket_is_replaced_by_the_watchdog(broker: Broker, fake_coinbase: FakeCoinbase) -> None:
    fake = fake_coinbase
    settings = ingest_settings(broker, fake, coinbase={"heartbeat_timeout_s": 0.8})
    fake.trade("BTC-USD", 1)
    run = IngestThread(settings, LIVE).start()
    try:
        fake.wait_for_subscriptions(1)
        fake.set_heartbeats(False)  # the socket stays open but says nothing
        fake.wait_for_subscriptions(2, timeout_s=20)
        fake.set_heartbeats(True)
        fake.trade("BTC-USD", 3)
        since = {"BTC-USD": fake.trade_ids("BTC-USD")[0]}
        wait_until(
            lambda: all_reached(broker, settings.kafka.trades_topic, fake, since),
            30,
            "trades after reconnect",
        )
    finally:
        run.stop()
    assert run.counter("coinbase_reconnects_total") >= 1
    # the resubscribe brought the same last_match again: published twice, counted as a duplicate
    first = fake.trade_ids("BTC-USD")[0]
    assert trade_ids(read_topic(broker.bootstrap, settings.kafka.trades_topic))["BTC-USD"].count(first) >= 2
    assert run.counter("coinbase_duplicate_trades_total", product="BTC-USD") >= 1
