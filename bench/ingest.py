"""Ingestion throughput: frames -> parse -> normalize -> produce, against a same-run baseline.

Starts its own noida-db broker on a free 127.0.0.1 port (``infrastructure.services``), generates
N frames of the venue (``--venue coinbase``: Coinbase ``match`` + ``heartbeat`` frames; ``binance``:
Binance combined-stream ``trade`` frames) with the synthetic source (in memory, before timing), then
measures:

- pipeline: every frame through ``Pipeline.handle`` (parse, taker side, decimals, continuity,
  metrics, wire encoding) and ``TradeProducer`` (idempotent, acks=all), until flushed;
- baseline: confluent-kafka alone producing the same number of pre-serialized wire payloads of
  the same size, used exactly as ``TradeProducer`` uses it (configuration, failure-only delivery
  reports, poll cadence), until flushed.

Prints msgs/s for both and the ratio. Run: ``make bench-ingest`` (both venues, one after the other) or
``python bench/ingest.py -n 1000000 --venue binance``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Producer

from infrastructure.bootstrap import ensure_topics
from infrastructure.settings import Settings
from ingestion.events import Trade
from ingestion.metrics import IngestMetrics
from ingestion.pipeline import Pipeline, Venue, binance_venue, coinbase_venue
from ingestion.producer import POLL_EVERY, TradeProducer, trade_producer_config
from ingestion.sources import synthetic_binance_frames, synthetic_binance_symbols, synthetic_frames
from orchestration.local_stack import launch_broker

PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT")
FLUSH_TIMEOUT_S = 300
CPU: dict[str, float] = {}  # process CPU seconds per run (this process, librdkafka threads included)


def make_frames(venue: str, n: int, seed: int) -> list[bytes]:
    # a high nominal rate keeps Coinbase heartbeats rare (one per product per synthetic second)
    start = datetime.now(UTC)
    if venue == "binance":
        frames = synthetic_binance_frames(
            synthetic_binance_symbols(SYMBOLS), seed, start, rate_per_s=1_000_000
        )
    else:
        frames = synthetic_frames(PRODUCTS, seed, start, rate_per_s=1_000_000)
    return [frame for _, frame in itertools.islice(frames, n)]


def make_venue(venue: str, settings: Settings) -> Venue:
    return (
        binance_venue(settings, synthetic_binance_symbols(SYMBOLS))
        if venue == "binance"
        else coinbase_venue(settings)
    )


def run_pipeline(settings: Settings, venue: Venue, frames: list[bytes]) -> tuple[float, int, int]:
    metrics = IngestMetrics()
    producer = TradeProducer(settings.kafka, metrics)
    pipeline = Pipeline(settings, producer, metrics, venue)
    handle, now = pipeline.handle, datetime.now
    start, cpu = time.perf_counter(), time.process_time()
    for frame in frames:
        handle(frame, now(UTC), "synthetic")
    unsent = producer.flush(FLUSH_TIMEOUT_S)
    elapsed = time.perf_counter() - start
    CPU["pipeline"] = time.process_time() - cpu
    if unsent or producer.failed or producer.acked != pipeline.counts.trades:
        raise SystemExit(f"pipeline lost messages: {pipeline.counts} acked={producer.acked} unsent={unsent}")
    return elapsed, pipeline.counts.trades, producer.acked


def wire_payloads(venue: Venue, frames: list[bytes], limit: int = 20_000) -> list[tuple[bytes, bytes]]:
    """Real wire messages (value, key) of the first trades, to cycle through in the baseline."""
    out = []
    for frame in frames[: limit * 2]:
        parsed = venue.parse(frame, datetime.now(UTC), "synthetic", venue.synthetic_exchange)
        if isinstance(parsed, Trade):
            out.append((parsed.to_wire(), parsed.key))
            if len(out) == limit:
                break
    return out


def run_baseline(settings: Settings, payloads: list[tuple[bytes, bytes]], n: int) -> tuple[float, int]:
    """The client used exactly as ``TradeProducer`` uses it (same configuration, failure-only
    delivery reports, a poll every ``POLL_EVERY`` sends, back-pressure on a full queue), without
    any of the pipeline's work."""
    failed = 0

    def on_failure(err, msg) -> None:
        nonlocal failed
        if err is not None:
            failed += 1

    producer = Producer({**trade_producer_config(settings.kafka), "on_delivery": on_failure})
    topic = settings.kafka.trades_topic
    produce, poll = producer.produce, producer.poll
    cycle = itertools.islice(itertools.cycle(payloads), n)
    start, cpu = time.perf_counter(), time.process_time()
    for i, (value, key) in enumerate(cycle, 1):
        while True:
            try:
                produce(topic, value, key)
                break
            except BufferError:
                poll(0.05)
        if not i % POLL_EVERY:
            poll(0)
    unsent = producer.flush(FLUSH_TIMEOUT_S)
    elapsed = time.perf_counter() - start
    CPU["baseline"] = time.process_time() - cpu
    acked = n - failed - unsent
    if unsent or failed:
        raise SystemExit(f"baseline lost messages: acked={acked} of {n}, failed={failed}, unsent={unsent}")
    return elapsed, acked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--venue", choices=("coinbase", "binance"), default="coinbase",
                        help="whose frame format goes through the pipeline")  # fmt: skip
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        broker = launch_broker(Path(tmp))  # a free port, picked again if another program takes it
        try:
            base = {"bootstrap_servers": broker.bootstrap, "partitions": 4}
            pipe_settings = Settings(_env_file=None, products=PRODUCTS,
                                     kafka={**base, "trades_topic": "bench.pipeline", "dlq_topic": "bench.dlq"})  # fmt: skip
            venue = make_venue(args.venue, pipe_settings)
            base_settings = Settings(_env_file=None, products=PRODUCTS,
                                     kafka={**base, "trades_topic": "bench.baseline", "dlq_topic": "bench.dlq"})  # fmt: skip
            ensure_topics(pipe_settings.kafka)
            ensure_topics(base_settings.kafka)

            print(f"generating {args.messages:,} synthetic {args.venue} frames ...", flush=True)
            frames = make_frames(args.venue, args.messages, args.seed)
            payloads = wire_payloads(venue, frames)
            mean_frame = sum(map(len, frames[:20_000])) / min(len(frames), 20_000)
            mean_wire = sum(len(v) for v, _ in payloads) / len(payloads)

            base_s, base_n = run_baseline(base_settings, payloads, args.messages)
            pipe_s, trades, acked = run_pipeline(pipe_settings, venue, frames)
        finally:
            broker.stop()

    base_rate, pipe_rate = base_n / base_s, args.messages / pipe_s
    print(f"venue {args.venue}: frames: {args.messages:,} ({trades:,} trades, {args.messages - trades:,} heartbeats), "
          f"mean frame {mean_frame:.0f} B, mean wire message {mean_wire:.0f} B")  # fmt: skip
    print(
        f"baseline  confluent-kafka, pre-serialized: {base_n:,} msgs in {base_s:.2f} s = {base_rate:,.0f} msgs/s"
    )
    print(f"pipeline  parse+normalize+produce:         {args.messages:,} frames in {pipe_s:.2f} s = "
          f"{pipe_rate:,.0f} msgs/s ({acked:,} trades acked)")  # fmt: skip
    print(f"ratio pipeline/baseline: {pipe_rate / base_rate:.2f}  (targets: >= 100,000 msgs/s, ratio >= 0.6)")
    n = args.messages
    print(f"CPU of this process per message: baseline {CPU['baseline'] / n * 1e6:.1f} us, "
          f"pipeline {CPU['pipeline'] / n * 1e6:.1f} us (the broker runs in its own process); "
          f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")  # fmt: skip


if __name__ == "__main__":
    main()
