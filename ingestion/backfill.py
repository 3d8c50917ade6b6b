"""Backfill a product's trades for a time range from Coinbase's REST API into Kafka.

Used by ``lakehouse backfill`` and the ``crypto_backfill`` DAG. Trades go through the same
pipeline as live ones (``source=backfill``); trades already on the topic are published again on
purpose, since silver keeps exactly one row per trade id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from infrastructure.settings import Settings
from ingestion.events import Trade


@dataclass(frozen=True)
class BackfillResult:
    product: str
    start: datetime
    end: datetime
    published: int
    acked: int
    unsent: int

    @property
    def complete(self) -> bool:
        """Every published trade was acknowledged by the broker."""
        return self.unsent == 0 and self.acked == self.published


def backfill_range(
    settings: Settings,
    product: str,
    start: datetime,
    end: datetime,
    on_trade: Callable[[Trade], None] | None = None,
) -> BackfillResult:
    """Publish ``product``'s trades in ``[start, min(end, now))``; block until the producer flushed.
    ``on_trade`` sees each trade as it is published (e.g. to show progress)."""
    import aiohttp

    from infrastructure.bootstrap import ensure_topics
    from ingestion.coinbase_rest import CoinbaseRest
    from ingestion.metrics import IngestMetrics
    from ingestion.pipeline import Pipeline
    from ingestion.producer import TradeProducer

    end = min(end, datetime.now(UTC))

    async def main() -> BackfillResult:
        ensure_topics(settings.kafka)
        metrics = IngestMetrics()
        producer = TradeProducer(settings.kafka, metrics)
        pipeline = Pipeline(settings, producer, metrics)
        try:
            async with aiohttp.ClientSession() as session:
                rest = CoinbaseRest(settings.coinbase, session)

                def invalid(raw: bytes, reason: str) -> None:
                    pipeline.dead_letter(raw, reason, "backfill")

                async for trade in rest.between(product, start, end, invalid):
                    pipeline.publish_backfill(trade)
                    if on_trade is not None:
                        on_trade(trade)
        finally:
            unsent = producer.flush(60)
        return BackfillResult(product, start, end, pipeline.counts.backfilled, producer.acked, unsent)

    return asyncio.run(main())
