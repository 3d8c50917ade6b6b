"""The Binance source against a fake Binance (real combined-stream WebSocket + REST protocol) and a
real broker: gaps are backfilled over historicalTrades, garbage is dead-lettered and the feed goes
on, the 24-hour connection is rotated before the venue closes it without a gap or a duplicate, pings
are answered with their payload, and a 429's Retry-After is honoured."""

from __future__ import annotations

import itertools
import threading
import time

import orjson
import pytest

from ingestion.binance_ws import MAX_HANDOVER_FRAMES
from ingestion.dead_letters import read_dead_letter_headers
from ingestion.runner import Ingestor, RunOptions
from tests.fixtures.binance import PING_PAYLOAD, FakeBinance
from tests.fixtures.ingest import IngestThread, binance_settings, read_topic, wait_until
from tests.fixtures.services import Broker

LIVE = RunOptions(source="binance", serve_metrics=False, flush_timeout_s=30)
PRODUCTS = {"BTCUSDT": "BTC-USDT", "ETHUSDT": "ETH-USDT"}


def topic_ids(broker: Broker, topic: str) -> dict[str, list[int]]:
    """product -> trade ids in topic order (all venues' messages are checked to be Binance's)."""
    found: dict[str, list[int]] = {}
    for msg in read_topic(broker.bootstrap, topic):
        obj = orjson.loads(msg.value())
        assert obj["exchange"] == "binance"
        assert msg.key() == f"binance:{obj['product_id']}".encode()
        found.setdefault(obj["product_id"], []).append(obj["trade_id"])
    return found


def expected(fake: FakeBinance, since: dict[str, int]) -> dict[str, set[int]]:
    return {PRODUCTS[s]: {i for i in fake.trade_ids(s) if i >= since.get(s, 0)} for s in fake.symbols}


def all_reached(broker: Broker, topic: str, fake: FakeBinance, since: dict[str, int]) -> bool:
    try:
        found = topic_ids(broker, topic)
    except (KeyError, TimeoutError):
        return False
    return all(ids <= set(found.get(p, [])) for p, ids in expected(fake, since).items())


def next_ids(fake: FakeBinance) -> dict[str, int]:
    """The id of each symbol's next trade: trades from here on are the client's to deliver."""
    return {s: (fake.trade_ids(s)[-1] + 1 if fake.trade_ids(s) else 0) for s in fake.symbols}


def test_disconnect_and_skipped_range_are_backfilled(broker: Broker, fake_binance: FakeBinance) -> None:
    fake = fake_binance
    settings = binance_settings(broker, fake)
    topic = settings.kafka.trades_topic
    fake.trade("BTCUSDT", 5)  # history from before we connect: not ours to fill
    run = IngestThread(settings, LIVE).start()
    try:
        fake.wait_for_connections(1)
        since = next_ids(fake)
        fake.trade("BTCUSDT", 20)
        fake.trade("ETHUSDT", 10)
        fake.skip(7)
        fake.trade("BTCUSDT", 7)  # happen, but never sent on the socket
        fake.trade("BTCUSDT", 3)  # the next one reveals the jump
        fake.drop_connections()
        fake.trade("BTCUSDT", 15)  # while the client is away
        fake.trade("ETHUSDT", 15)
        fake.wait_for_connections(2)
        fake.trade("BTCUSDT", 5)
        fake.trade("ETHUSDT", 5)
        wait_until(lambda: all_reached(broker, topic, fake, since), 60, "every trade id on the topic")
    finally:
        summary = run.stop()
    messages = read_topic(broker.bootstrap, topic)
    found = topic_ids(broker, topic)
    for product, ids in expected(fake, since).items():
        assert ids - set(found[product]) == set()
        assert min(found[product]) == min(ids)  # nothing from before we connected
    assert {orjson.loads(m.value())["source"] for m in messages} == {"ws", "backfill"}
    assert summary.counts.gaps >= 2 and summary.counts.backfilled >= 7 + 15 + 15
    history = [q for path, q in fake.rest_requests if path == "/api/v3/historicalTrades"]
    assert history and all("fromId" in q for q in history)
    assert run.counter("coinbase_reconnects_total") >= 1
    assert run.counter("coinbase_gaps_detected_total", product="BTC-USDT") >= 2
    assert summary.unsent == 0 and summary.failed == 0 and not summary.pending_gaps
    for product in PRODUCTS.values():  # one partition per product: its live trades stay in order
        assert len({m.partition() for m in messages if m.key() == f"binance:{product}".encode()}) == 1


def test_garbage_is_dead_lettered_with_a_reason_and_the_feed_goes_on(
    broker: Broker, fake_binance: FakeBinance
) -> None:
    fake = fake_binance
    settings = binance_settings(broker, fake, max_frame_bytes=2048)
    good = orjson.dumps(
        {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 1, "p": "10.00",
                                              "q": "1.0", "T": 1, "m": True, "M": True}}
    )  # fmt: skip
    garbage = {
        b"this is not json": "not JSON",
        good.replace(b'"10.00"', b'"0"'): "non-positive price",
        good.replace(b'"1.0"', b'"-2"'): "non-positive size",
        good.replace(b',"m":true', b""): "trade missing fields: m",
        good.replace(b'"p":"10.00"', b'"p":10.0'): "price must be a decimal string",
        good.replace(b'"s":"BTCUSDT"', b'"s":"XRPUSDT"'): "unknown symbol 'XRPUSDT'",
        good.replace(b'"btcusdt@trade"', b'"ethusdt@trade"'): "carries a BTCUSDT trade",
        b'{"stream":"btcusdt@nope","data":{"e":"nope"}}': "unknown event type 'nope'",
        b'{"stream":"btcusdt@trade","data":{"e":"trade","pad":"' + b"x" * 3000 + b'"}}': "oversized frame",
    }
    run = IngestThread(settings, LIVE).start()
    try:
        fake.wait_for_connections(1)
        since = next_ids(fake)
        for raw in garbage:
            fake.send_raw(raw)
        fake.send_raw(b'{"code":2,"msg":"Invalid request: too many parameters","id":7}')  # counted, not a DLQ
        fake.trade("BTCUSDT", 3)
        topic, dlq = settings.kafka.trades_topic, settings.kafka.dlq_topic
        wait_until(lambda: all_reached(broker, topic, fake, since), 30, "valid trades after the garbage")
        wait_until(lambda: run.counter("coinbase_dead_letters_total") >= len(garbage), 30, "dead letters")
    finally:
        summary = run.stop()
    dead = read_topic(broker.bootstrap, dlq)
    assert len(dead) == len(garbage)
    by_value = {m.value(): read_dead_letter_headers(m.headers()) for m in dead}
    for raw, reason in garbage.items():
        headers = by_value[raw]  # the original bytes, untouched
        assert reason in headers["dlq.reason"], (reason, headers["dlq.reason"])
        assert headers["dlq.stage"] == "ingest" and headers["dlq.source"] == "ws"
    assert summary.counts.dead_letters == len(garbage) and summary.dead_lettered == len(garbage)
    assert run.counter("coinbase_exchange_errors_total") == 1
    assert run.counter("coinbase_messages_received_total", type="invalid") == len(garbage)


def test_connection_is_rotated_before_its_lifetime_without_a_gap(broker: Broker) -> None:
    """The venue closes a connection at ``lifetime_s`` (24 h; seconds here): the client opens the next
    one before, overlaps and hands over: every trade once on the topic, none backfilled."""
    # the 1st, 3rd, ... connection runs 0.1 s behind: merged as they come, the handover to a nearer
    # connection would look like a gap
    fake = FakeBinance(lifetime_s=5.0, ping_interval_s=0.3, pong_timeout_s=4.0, slow_connection_lag_s=0.1)
    fake.start()
    settings = binance_settings(broker, fake, connection_lifetime_s=5.0, rotate_margin_s=3.0, handover_s=0.5)
    topic = settings.kafka.trades_topic
    stop = threading.Event()

    def market() -> None:  # a steady flow of trades across every handover
        while not stop.is_set():
            fake.trade("BTCUSDT", 3)
            fake.trade("ETHUSDT", 1)
            time.sleep(0.02)

    run = IngestThread(settings, LIVE).start()
    trader = threading.Thread(target=market, daemon=True)
    try:
        fake.wait_for_connections(1)
        since = next_ids(fake)
        trader.start()
        wait_until(lambda: run.counter("coinbase_connection_rotations_total") >= 3, 60, "three rotations")
        fake.server_shutdown()  # announced: rotate now, not at the lifetime mark
        connections = fake.connections
        wait_until(lambda: fake.connections > connections, 20, "a connection after the shutdown notice")
        wait_until(
            lambda: run.counter("coinbase_connection_rotations_total") >= 4, 20, "the shutdown handover"
        )
        stop.set()
        trader.join(timeout=10)
        wait_until(lambda: all_reached(broker, topic, fake, since), 30, "every trade on the topic")
    finally:
        stop.set()
        summary = run.stop()
        fake.stop()
    found = topic_ids(broker, topic)
    for product, ids in expected(fake, since).items():
        assert sorted(found[product]) == sorted(ids)  # each exactly once: no gap, no duplicate
        assert found[product] == sorted(found[product])  # and in exchange order
    assert summary.counts.gaps == 0 and summary.counts.backfilled == 0
    assert summary.counts.duplicates > 0  # the overlaps did deliver trades twice; they were dropped
    assert not [p for p, _ in fake.rest_requests if p == "/api/v3/historicalTrades"]
    assert fake.closed_for_lifetime == 0  # every connection was left before the venue closed it
    assert run.counter("coinbase_reconnects_total") == 0
    assert 0 < run.counter("coinbase_handover_frames_held") <= MAX_HANDOVER_FRAMES
    # keep-alive: the fake's pings (every 0.3 s, 4 s to answer; slack for a busy machine) were answered with their payload
    assert fake.pongs and set(fake.pongs) == {PING_PAYLOAD}


def test_rate_limit_answers_are_waited_out(broker: Broker, fake_binance: FakeBinance) -> None:
    fake = fake_binance
    settings = binance_settings(broker, fake)
    run = IngestThread(settings, LIVE).start()
    try:
        fake.wait_for_connections(1)
        since = next_ids(fake)
        fake.trade("BTCUSDT", 2)
        fake.rate_limit_next(2)  # the gap's first two history requests: 429, Retry-After: 1
        fake.skip(30)
        fake.trade("BTCUSDT", 31)
        wait_until(
            lambda: all_reached(broker, settings.kafka.trades_topic, fake, since), 60, "the gap filled"
        )
    finally:
        summary = run.stop()
    assert fake.rest_rate_limited == 2 and summary.counts.backfilled == 30
    history = [q for p, q in fake.rest_requests if p == "/api/v3/historicalTrades"]
    assert len(history) == 3 and history[0] == history[2]  # the same page asked again after waiting


def test_unknown_symbol_fails_the_start_naming_it(broker: Broker, fake_binance: FakeBinance) -> None:
    import asyncio

    from ingestion.venue_io import RestError

    settings = binance_settings(broker, fake_binance, symbols=("BTCUSDT", "NOPEUSDT"))
    with pytest.raises(RestError, match="Invalid symbol"):
        asyncio.run(Ingestor(settings, echo=lambda _m: None).run(LIVE))


def test_a_recording_of_aggregate_trades_replays_into_the_same_events(
    broker: Broker, fake_binance: FakeBinance, tmp_path
) -> None:
    """Recorded ``@aggTrade`` frames (what some users keep) replay as Binance trades in the aggregate
    id range; the symbol metadata is asked of the venue once."""
    from datetime import UTC, datetime
    from pathlib import Path

    from ingestion.binance_parser import AGGREGATE_ID_BASE
    from ingestion.sources import RecordingWriter

    agg = orjson.loads(
        (Path(__file__).parents[1] / "fixtures" / "binance_frames" / "agg_trade.json").read_bytes()
    )
    path = tmp_path / "agg.ndjson.zst"
    writer = RecordingWriter(path)
    for i in range(5):
        frame = {**agg, "data": {**agg["data"], "a": 100 + i, "f": 1000 + 3 * i, "l": 1002 + 3 * i}}
        writer.write(orjson.dumps(frame), datetime.now(UTC))
    writer.close()
    settings = binance_settings(broker, fake_binance)
    options = RunOptions(source="replay", venue="binance", replay_file=path, speed=0, serve_metrics=False)
    summary = IngestThread(settings, options).start().join()
    trades = [orjson.loads(m.value()) for m in read_topic(broker.bootstrap, settings.kafka.trades_topic)]
    assert [t["trade_id"] - AGGREGATE_ID_BASE for t in trades] == [100, 101, 102, 103, 104]
    assert {(t["exchange"], t["product_id"], t["source"]) for t in trades} == {
        ("binance", "BTC-USDT", "replay")
    }
    assert summary.counts.gaps == 0 and summary.counts.trades == 5
    assert [p for p, _ in fake_binance.rest_requests] == ["/api/v3/exchangeInfo"]


def test_aggregate_stream_gap_is_filled_from_agg_trades(broker: Broker, fake_binance: FakeBinance) -> None:
    """``binance.channel=aggTrade``: the live aggregates, in their own id range, and a skipped range
    of them filled over ``aggTrades``, not ``historicalTrades``."""
    from ingestion.binance_parser import AGGREGATE_ID_BASE

    fake = fake_binance
    settings = binance_settings(broker, fake, channel="aggTrade")
    run = IngestThread(settings, LIVE).start()
    try:
        fake.wait_for_connections(1)
        first = len(fake.agg_ids("BTCUSDT"))
        fake.trade("BTCUSDT", 3)
        fake.skip(6)
        fake.trade("BTCUSDT", 8)
        wanted = {AGGREGATE_ID_BASE + a for a in fake.agg_ids("BTCUSDT")[first:]}

        def arrived() -> bool:
            try:
                return wanted <= set(topic_ids(broker, settings.kafka.trades_topic).get("BTC-USDT", []))
            except (KeyError, TimeoutError):
                return False

        wait_until(arrived, 30, "every aggregate on the topic")
    finally:
        summary = run.stop()
    assert summary.counts.gaps == 1 and summary.counts.backfilled == 6
    paths = {p for p, _ in fake.rest_requests}
    assert "/api/v3/aggTrades" in paths and "/api/v3/historicalTrades" not in paths


def test_an_id_range_is_backfilled_on_request(broker: Broker, fake_binance: FakeBinance) -> None:
    """``backfill_ids(..., exchange="binance")``: what silver's completeness check asks for a hole."""
    from ingestion.backfill import backfill_ids

    fake = fake_binance
    ids = fake.trade("BTCUSDT", 2500)  # three pages of 1000
    settings = binance_settings(broker, fake)
    result = backfill_ids(settings, "BTC-USDT", ids[10], ids[2400], exchange="binance")
    assert result.complete and result.published == 2391
    found = topic_ids(broker, settings.kafka.trades_topic)["BTC-USDT"]
    assert found == ids[10:2401]
    assert [q["fromId"] for p, q in fake.rest_requests if p == "/api/v3/historicalTrades"] == [
        str(ids[10]), str(ids[1010]), str(ids[2010]),
    ]  # fmt: skip


def test_a_refused_handshake_waits_its_retry_after(broker: Broker, fake_binance: FakeBinance) -> None:
    fake = fake_binance
    settings = binance_settings(broker, fake)
    fake.refuse_connections(2, status=429, retry_after_s=1)
    run = IngestThread(settings, LIVE).start()
    try:
        fake.wait_for_connections(1, timeout_s=30)
        since = next_ids(fake)
        fake.trade("ETHUSDT", 3)
        wait_until(lambda: all_reached(broker, settings.kafka.trades_topic, fake, since), 30, "trades")
    finally:
        run.stop()
    attempts = [*fake.refused, fake.accepted[0]]
    assert len(fake.refused) == 2
    # each attempt after a refusal came no sooner than its Retry-After (the backoff alone is 0.05 s)
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(attempts))
