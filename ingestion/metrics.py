"""Prometheus metrics of the producer, served on ``settings.metrics.host:producer_port``.

Each ``IngestMetrics`` owns its registry, so tests and benchmarks can build several in one process.
Labels are ``product`` and ``type`` at most (no ids, no times: bounded cardinality).

The two per-frame metrics (frames received by type, trade latency) are plain counters read at
scrape time by a custom collector: prometheus-client's own objects take a lock per update, which
cost more than parsing the frame.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# "match" counts every trade frame (Coinbase match, Binance trade/aggTrade); "control" the frames that
# only announce state (Binance's serverShutdown, answers to requests)
FRAME_TYPES = ("match", "heartbeat", "subscriptions", "control", "skipped", "error", "invalid")


class LatencyHistogram:
    """Lock-free histogram for one writer thread; a scrape may see it mid-update by one sample."""

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # last slot: above the highest bound (+Inf)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class _FrameCollector(Collector):
    def __init__(self, metrics: IngestMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        received = CounterMetricFamily(
            "coinbase_messages_received", "Frames read, by frame type", labels=["type"]
        )
        for kind, count in self.metrics.received.items():
            received.add_metric([kind], count)
        yield received
        trades = CounterMetricFamily(
            "coinbase_trades_received", "Trades read from the feed, by product", labels=["product"]
        )
        for product, count in self.metrics.trades.items():
            trades.add_metric([product], count)
        yield trades
        latency = self.metrics.latency
        family = HistogramMetricFamily(
            "coinbase_message_latency_seconds", "Receive time minus exchange time of each trade"
        )
        family.add_metric([], latency.cumulative(), latency.sum)
        yield family


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # per-frame: updated without locks, exported by _FrameCollector
        self.received: dict[str, int] = dict.fromkeys(FRAME_TYPES, 0)
        # per product; the pipeline seeds every configured product with 0 so a silent one shows
        self.trades: dict[str, int] = {}
        self.latency = LatencyHistogram()
        r.register(_FrameCollector(self))
        self.produced = Counter(
            "coinbase_messages_produced_total", "Trades acknowledged by the broker", registry=r
        )
        self.connected = Gauge(
            "coinbase_websocket_connected", "1 while subscribed to the Coinbase feed", registry=r
        )
        self.gaps = Counter("coinbase_gaps_detected_total", "trade_id gaps detected", ["product"], registry=r)
        self.gap_trades = Counter(
            "coinbase_gap_trades_missing_total", "trade ids missing in detected gaps", ["product"], registry=r
        )
        self.backfilled = Counter(
            "coinbase_trades_backfilled_total", "Trades published from REST backfill", ["product"], registry=r
        )
        self.duplicates = Counter(
            "coinbase_duplicate_trades_total",
            "Trades seen more than once (socket and REST); published anyway, silver deduplicates",
            ["product"],
            registry=r,
        )
        self.dead_letters = Counter(
            "coinbase_dead_letters_total", "Frames sent to the dead-letter topic", registry=r
        )
        # label values come from the parser's fixed SKIPPED_TYPES: bounded cardinality
        self.skipped = Counter(
            "coinbase_frames_skipped_total",
            "Well-formed frames of channels the pipeline does not use (level2, ticker, ...), by type",
            ["type"],
            registry=r,
        )
        self.delivery_failures = Counter(
            "coinbase_delivery_failures_total", "Messages the broker did not acknowledge", registry=r
        )
        self.producer_restarts = Counter(
            "coinbase_producer_restarts_total",
            "Kafka producers replaced after a fatal error (e.g. a broker that lost acknowledged trades)",
            registry=r,
        )
        self.resent = Counter(
            "coinbase_producer_resent_total",
            "Trades sent again after a fatal producer error or a timeout (not acknowledged the first time)",
            registry=r,
        )
        self.reconnects = Counter("coinbase_reconnects_total", "WebSocket reconnects", registry=r)
        # bounded by binance_ws.MAX_HANDOVER_FRAMES: what the last handover held back at once
        self.handover_held = Gauge(
            "coinbase_handover_frames_held",
            "Frames of the new connection held back during the last handover (bounded)",
            registry=r,
        )
        self.rotations = Counter(
            "coinbase_connection_rotations_total",
            "WebSocket connections replaced before the venue's lifetime limit (Binance: 24 h), overlapping",
            registry=r,
        )
        self.exchange_errors = Counter(
            "coinbase_exchange_errors_total", "error frames sent by Coinbase", registry=r
        )
        self.queue_depth = Gauge(
            "coinbase_producer_queue_depth", "Messages waiting in the producer's local queue", registry=r
        )

    def serve(self, host: str, port: int) -> None:
        """Expose ``/metrics`` over HTTP from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
