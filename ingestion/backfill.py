"""Backfill a product's trades from a venue's REST API into Kafka, by time range or by trade-id range.

By id range for Coinbase and Binance (``exchange=``); by time range for Coinbase.

Used by ``lakehouse backfill`` and the ``crypto_backfill`` DAG. Trades go through the same
pipeline as live ones (``source=backfill``); trades already on the topic are published again on
purpose, since silver keeps exactly one row per trade id. A hole silver's completeness check found
is an id range: :func:`backfill_ids` pages back from its upper end with the ``after`` cursor and
stops at its lower end, so it costs ``missing / 1000`` requests whatever the hole's age.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from infrastructure.settings import Settings
from ingestion.events import Trade


@dataclass(frozen=True)
class BackfillResult:
    product: str
    start: datetime | None  # the time range asked for (by time)
    end: datetime | None
    published: int
    acked: int
    unsent: int
    first_id: int | None = None  # the id range asked for (by id)
    last_id: int | None = None

    @property
    def complete(self) -> bool:
        """Every published trade was acknowledged by the broker."""
        return self.unsent == 0 and self.acked == self.published


# (REST client, dead-letter callback) -> the trades to publish
Fetch = Callable[..., AsyncIterator[Trade]]


def _publish(
    settings: Settings,
    product: str,
    fetch: Fetch,
    on_trade: Callable[[Trade], None] | None = None,
    exchange: str = "coinbase",
) -> tuple[int, int, int]:
    """Publish what ``fetch`` yields; block until the producer flushed: (published, acked, unsent).
    ``on_trade`` sees each trade as it is published (e.g. to show progress)."""
    import aiohttp

    from infrastructure.bootstrap import ensure_topics
    from ingestion.binance_rest import BinanceRest
    from ingestion.coinbase_rest import CoinbaseRest
    from ingestion.metrics import IngestMetrics
    from ingestion.pipeline import Pipeline, binance_venue, coinbase_venue
    from ingestion.producer import TradeProducer

    if exchange not in ("coinbase", "binance"):
        raise ValueError(f"no REST backfill for exchange {exchange!r} (coinbase or binance)")

    async def main() -> tuple[int, int, int]:
        ensure_topics(settings.kafka)
        metrics = IngestMetrics()
        producer = TradeProducer(settings.kafka, metrics)
        pipeline: Pipeline | None = None
        try:
            async with aiohttp.ClientSession() as session:
                if exchange == "binance":
                    rest = BinanceRest(settings.binance, session)
                    symbols = await rest.exchange_info(settings.binance.symbols)
                    pipeline = Pipeline(settings, producer, metrics, binance_venue(settings, symbols))
                else:
                    rest = CoinbaseRest(settings.coinbase, session)
                    pipeline = Pipeline(settings, producer, metrics, coinbase_venue(settings))

                def invalid(raw: bytes, reason: str) -> None:
                    pipeline.dead_letter(raw, reason, "backfill", product)

                async for trade in fetch(rest, invalid):
                    pipeline.publish_backfill(trade)
                    if on_trade is not None:
                        on_trade(trade)
        finally:
            unsent = producer.flush(60)
        return (pipeline.counts.backfilled if pipeline else 0), producer.acked, unsent

    return asyncio.run(main())


def backfill_range(
    settings: Settings,
    product: str,
    start: datetime,
    end: datetime,
    on_trade: Callable[[Trade], None] | None = None,
) -> BackfillResult:
    """Publish ``product``'s trades in ``[start, min(end, now))``; block until the producer flushed."""
    end = min(end, datetime.now(UTC))
    published, acked, unsent = _publish(
        settings, product, lambda rest, invalid: rest.between(product, start, end, invalid), on_trade
    )
    return BackfillResult(product, start, end, published, acked, unsent)


def backfill_ids(
    settings: Settings, product: str, first_id: int, last_id: int, exchange: str = "coinbase"
) -> BackfillResult:
    """Publish ``product``'s trades on ``exchange`` with ``first_id <= trade_id <= last_id``; block
    until flushed. For Binance, ``product`` is the canonical id (``BTC-USDT``) of a configured symbol."""
    from ingestion.continuity import Gap

    if first_id > last_id:
        raise ValueError(f"empty trade-id range {first_id}..{last_id}")
    gap = Gap(product, first_id - 1, last_id + 1, exchange)
    published, acked, unsent = _publish(
        settings, product, lambda rest, invalid: rest.fill(gap, invalid), exchange=exchange
    )
    return BackfillResult(product, None, None, published, acked, unsent, first_id, last_id)
