"""Prometheus metrics of the producer, served on ``settings.metrics.host:producer_port``.

Each ``IngestMetrics`` owns its registry, so tests and benchmarks can build several in one process.
Labels are ``product`` and ``type`` at most (no ids, no times: bounded cardinality).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "coinbase_messages_received_total", "Frames read, by frame type", ["type"], registry=r
        )
        self.produced = Counter(
            "coinbase_messages_produced_total", "Trades acknowledged by the broker", registry=r
        )
        self.connected = Gauge(
            "coinbase_websocket_connected", "1 while subscribed to the Coinbase feed", registry=r
        )
        self.latency = Histogram(
            "coinbase_message_latency_seconds",
            "Receive time minus exchange time of each trade",
            buckets=LATENCY_BUCKETS,
            registry=r,
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
        self.delivery_failures = Counter(
            "coinbase_delivery_failures_total", "Messages the broker did not acknowledge", registry=r
        )
        self.reconnects = Counter("coinbase_reconnects_total", "WebSocket reconnects", registry=r)
        self.exchange_errors = Counter(
            "coinbase_exchange_errors_total", "error frames sent by Coinbase", registry=r
        )
        self.queue_depth = Gauge(
            "coinbase_producer_queue_depth", "Messages waiting in the producer's local queue", registry=r
        )

    def serve(self, host: str, port: int) -> None:
        """Expose ``/metrics`` over HTTP from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
