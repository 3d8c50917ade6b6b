"""Coinbase Exchange REST backfill: ``GET /products/{product_id}/trades`` with cursor pagination.

The endpoint returns trades newest first, at most ``limit`` (1000) per page. ``after=ID`` asks for
trades older than ``ID``; the ``CB-AFTER`` response header is the cursor for the next older page
(``CB-BEFORE`` for the newer side). Public requests are limited to 10 per second, so every request
first takes a token from a :class:`TokenBucket`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import orjson

from infrastructure.settings import CoinbaseSettings
from ingestion.coinbase_parser import parse_rest_trade
from ingestion.continuity import Gap
from ingestion.events import Trade
from ingestion.venue_io import RETRY, InvalidCallback, RestClient, RestError, TokenBucket, parse_page

log = logging.getLogger(__name__)


class CoinbaseRest(RestClient):
    def __init__(self, coinbase: CoinbaseSettings, session: aiohttp.ClientSession) -> None:
        self.base_url = coinbase.rest_url.rstrip("/")
        self.limit = coinbase.rest_page_limit
        self.bucket = TokenBucket(coinbase.rest_rate_limit_per_s)
        self.settings = coinbase
        self.session = session
        self.requests = 0

    async def page(self, product_id: str, after: int | None = None) -> tuple[list, int | None]:
        """One page of trades (newest first) and the cursor for the next older page."""
        params = {"limit": str(self.limit)}
        if after is not None:
            params["after"] = str(after)
        url = f"{self.base_url}/products/{product_id}/trades"

        def answer(status: int, headers, body: bytes) -> object:
            if status == 200:
                trades = orjson.loads(body)
                if not isinstance(trades, list):
                    raise RestError(f"{url}: expected a JSON list, got {body[:200]!r}")
                cursor = headers.get("CB-AFTER")
                return trades, int(cursor) if cursor and cursor.isdigit() else None
            if status != 429 and status < 500:
                raise RestError(f"{url} {params}: HTTP {status}: {body[:200]!r}")
            return RETRY

        return await self.get_answer(url, params, answer)

    async def fill(self, gap: Gap, on_invalid: InvalidCallback) -> AsyncIterator[Trade]:
        """Trades with ids strictly inside ``gap``, newest first; bad elements go to ``on_invalid``."""
        cursor: int | None = gap.before_id
        max_pages = gap.missing // self.limit + 2  # bound the loop even if the server misbehaves
        for _ in range(max_pages):
            trades, next_cursor = await self.page(gap.product_id, after=cursor)
            received = datetime.now(UTC)
            oldest = None
            for trade in parse_page(trades, parse_rest_trade, gap.product_id, received, on_invalid):
                oldest = trade.trade_id if oldest is None else min(oldest, trade.trade_id)
                if gap.after_id < trade.trade_id < gap.before_id:
                    yield trade
            if oldest is None or oldest <= gap.after_id + 1:
                return
            if next_cursor is None or (cursor is not None and next_cursor >= cursor):
                next_cursor = oldest
            cursor = next_cursor
        log.warning("backfill of %s stopped after %d pages", gap, max_pages)

    async def between(
        self, product_id: str, start: datetime, end: datetime, on_invalid: InvalidCallback
    ) -> AsyncIterator[Trade]:
        """Trades with ``start <= time < end``, newest first, paging back from the latest trade."""
        cursor: int | None = None
        while True:
            trades, next_cursor = await self.page(product_id, after=cursor)
            if not trades:
                return
            received = datetime.now(UTC)
            oldest_time, oldest_id = None, None
            for trade in parse_page(trades, parse_rest_trade, product_id, received, on_invalid):
                oldest_id = trade.trade_id if oldest_id is None else min(oldest_id, trade.trade_id)
                if start <= trade.event_time < end:
                    yield trade
                oldest_time = trade.event_time
            if oldest_time is None or oldest_id is None or oldest_time < start:
                return
            if next_cursor is None or (cursor is not None and next_cursor >= cursor):
                next_cursor = oldest_id
            if oldest_id <= 1:
                return
            cursor = next_cursor
