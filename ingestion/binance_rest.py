"""Binance spot REST: symbol metadata at start, and gap fill over the trade history paged by id.

- ``GET /api/v3/exchangeInfo?symbols=[...]`` (weight 20): each symbol's ``baseAsset`` and
  ``quoteAsset``, from which the canonical product ids are built (``binance_parser.symbol_products``).
- ``GET /api/v3/historicalTrades?symbol=S&fromId=N&limit=1000`` (weight 25): trades with ids from
  ``N`` upwards, oldest first. Its security type has been ``NONE`` since 2023-07-11 (the spot API
  CHANGELOG: "the X-MBX-APIKEY header is no longer necessary and is now ignored"), so no key is
  needed or configured;
- ``GET /api/v3/aggTrades?symbol=S&fromId=A&limit=1000`` (weight 4, public): the same for aggregate
  trades, for a gap in the aggregate id range (``binance.channel=aggTrade``).

Limits (rest-api.md, "LIMITS"): request weight is counted per IP (6000 per minute at the time of
writing); every request first takes a token from a :class:`TokenBucket` refilled at
``binance.rest_weight_budget_per_minute / 25`` (a history page's weight) per minute. A ``429``
means the limit was broken and a ``418`` that the IP is banned for continuing; both carry
``Retry-After`` (seconds), which is waited out before the next request (or, beyond
``binance.rest_max_wait_s``, the backfill fails: better a reported gap than a ban that grows "from
2 minutes to 3 days"). Other 4xx answers (``{"code": -1121, "msg": "Invalid symbol."}``) fail at
once with the venue's message; 5xx and network errors are retried with backoff.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime

import aiohttp
import orjson

from infrastructure.settings import BinanceSettings
from ingestion.binance_parser import (
    AGGREGATE_ID_BASE,
    is_aggregate,
    parse_rest_agg_trade,
    parse_rest_trade,
    symbol_products,
)
from ingestion.continuity import Gap
from ingestion.events import Trade
from ingestion.venue_io import (
    RETRY,
    InvalidCallback,
    RestClient,
    RestError,
    TokenBucket,
    parse_page,
    retry_after_wait,
)

log = logging.getLogger(__name__)
HISTORICAL_TRADES_WEIGHT = 25  # exchangeInfo weighs 20: budgeted as a page too


class BinanceRest(RestClient):
    def __init__(self, binance: BinanceSettings, session: aiohttp.ClientSession) -> None:
        self.settings = binance
        self.base_url = binance.rest_url.rstrip("/")
        self.limit = binance.rest_page_limit
        # one token per request, priced as the heaviest one (a history page): the budget's pace
        self.bucket = TokenBucket(binance.rest_weight_budget_per_minute / 60.0 / HISTORICAL_TRADES_WEIGHT)
        self.session = session
        self.requests = 0
        self.rate_limited = 0  # 429 / 418 answers seen
        self.symbols: dict[str, str] = {}  # product id -> symbol, once symbol metadata was fetched

    async def _get(self, path: str, params: dict[str, str]) -> object:
        url = f"{self.base_url}{path}"

        def answer(status: int, headers, body: bytes) -> object:
            if status == 200:
                return orjson.loads(body)
            if status in (418, 429):
                self.rate_limited += 1
                max_wait = self.settings.rest_max_wait_s
                return retry_after_wait(url, status, headers, max_wait, "binance.rest_max_wait_s")
            if status < 500:
                raise RestError(f"{url} {params}: HTTP {status}: {_message(body)}")
            return RETRY

        return await self.get_answer(url, params, answer)

    async def exchange_info(self, symbols: Iterable[str]) -> dict[str, str]:
        """``{"BTCUSDT": "BTC-USDT", ...}`` from the venue's symbol metadata (remembered for :meth:`fill`)."""
        wanted = [s.upper() for s in symbols]
        info = await self._get(
            "/api/v3/exchangeInfo",
            {"symbols": orjson.dumps(wanted).decode()},
        )
        try:
            products = symbol_products(info, wanted)
        except ValueError as exc:
            raise RestError(str(exc)) from None
        self.symbols = {product: symbol for symbol, product in products.items()}
        return products

    async def page(
        self, symbol: str, from_id: int, limit: int | None = None, aggregate: bool = False
    ) -> list:
        """Up to ``limit`` trades (``aggregate``: aggregate trades, ``fromId`` being the venue's own
        aggregate id) of ``symbol`` with ids from ``from_id`` upwards, oldest first."""
        params = {"symbol": symbol, "fromId": str(from_id), "limit": str(limit or self.limit)}
        path = "/api/v3/aggTrades" if aggregate else "/api/v3/historicalTrades"
        trades = await self._get(path, params)
        if not isinstance(trades, list):
            raise RestError(f"{path} {params}: expected a JSON list, got {str(trades)[:200]}")
        return trades

    async def fill(self, gap: Gap, on_invalid: InvalidCallback) -> AsyncIterator[Trade]:
        """Trades with ids strictly inside ``gap``, oldest first; bad elements go to ``on_invalid``.
        A gap in the aggregate id range (``@aggTrade``) is filled from ``aggTrades`` instead."""
        symbol = self.symbols.get(gap.product_id)
        if symbol is None:
            raise RestError(f"no Binance symbol known for {gap.product_id} (exchangeInfo not fetched?)")
        aggregate = is_aggregate(gap.after_id + 1)
        offset, parse = (AGGREGATE_ID_BASE, parse_rest_agg_trade) if aggregate else (0, parse_rest_trade)
        next_id = gap.after_id + 1
        max_pages = gap.missing // self.limit + 2  # bound the loop even if the server misbehaves
        for _ in range(max_pages):
            if next_id >= gap.before_id:
                return
            limit = min(self.limit, gap.before_id - next_id)
            trades = await self.page(symbol, next_id - offset, limit, aggregate)
            received = datetime.now(UTC)
            newest = None
            for trade in parse_page(trades, parse, gap.product_id, received, on_invalid):
                newest = trade.trade_id if newest is None else max(newest, trade.trade_id)
                if gap.after_id < trade.trade_id < gap.before_id:
                    yield trade
            if newest is None or newest < next_id:
                return  # nothing newer than asked: the venue has no more (or only bad elements)
            next_id = newest + 1
        log.warning("backfill of %s stopped after %d pages", gap, max_pages)


def _message(body: bytes) -> str:
    """The venue's ``{"code": -1121, "msg": "Invalid symbol."}`` as one line, else the body's start."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return repr(body[:200])
    if isinstance(obj, dict) and "msg" in obj:
        return f"{obj['msg']} (code {obj.get('code')})"
    return repr(body[:200])
