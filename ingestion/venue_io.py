"""What every venue's client shares: reconnect backoff, the REST token bucket and error, and the
per-element parsing of a REST page (a bad element is dead-lettered, the rest of the page kept).

Used by the Coinbase (``coinbase_ws``, ``coinbase_rest``), Binance (``binance_ws``,
``binance_rest``) and CoinGecko (``coingecko_rest``) clients; pure arithmetic and thin waits, no venue's format.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from ingestion.events import InvalidTrade, Trade
from ingestion.metrics import IngestMetrics

log = logging.getLogger(__name__)
InvalidCallback = Callable[[bytes, str], None]  # (raw element, reason) -> dead-letter it


def backoff_delay(
    attempt: int, initial_s: float, max_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): exponential, capped, with jitter.

    "Equal jitter": half the capped exponential plus a random share of the other half, so many
    clients restarted together spread out, yet none retries immediately in a tight loop.
    """
    cap = min(max_s, initial_s * (2 ** min(attempt, 32)))
    return cap / 2 + rand() * cap / 2


async def pause_before_reconnect(
    attempt: int, initial_s: float, max_s: float, url: str, metrics: IngestMetrics, stop: asyncio.Event
) -> None:
    """Count the reconnect and wait its backoff (cut short by ``stop``)."""
    delay = backoff_delay(attempt, initial_s, max_s)
    metrics.reconnects.inc()
    log.info("reconnecting to %s in %.2f s (attempt %d)", url, delay, attempt + 1)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)


class TokenBucket:
    """``rate`` requests per second with bursts of up to ``burst``; :meth:`reserve` is pure arithmetic.

    A reservation may drive the balance negative: the returned delay is how long the caller must
    wait for its token, so concurrent callers queue up fairly instead of all retrying at once.
    """

    def __init__(self, rate_per_s: float, burst: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.rate = rate_per_s
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.updated = clock()

    def reserve(self) -> float:
        """Take one token; return the seconds to wait before using it."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


REST_RETRIES = 5
REST_TIMEOUT_S = 10.0
RETRY = None  # an answer: try again after the capped backoff (a 5xx, a rate limit without a wait)


@dataclass(frozen=True)
class Wait:
    """An answer: the venue said how long to wait (``Retry-After``); then ask again."""

    seconds: float


def retry_after_s(value: str | None) -> float:
    """Seconds from a ``Retry-After`` header (the venues send whole seconds); 1 s when absent or odd
    (an HTTP date is not sent by either venue, and waiting one second then asking again is safe)."""
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0


def retry_after_wait(
    url: str, status: int, headers: Mapping[str, str], max_wait_s: float, setting: str
) -> Wait:
    """A rate-limit answer (429, Binance's 418) as the ``Wait`` its ``Retry-After`` asks for, or a
    ``RestError`` naming ``setting`` when that is longer than ``max_wait_s`` (a reported failure
    beats a ban that grows while the client keeps asking)."""
    wait = retry_after_s(headers.get("Retry-After"))
    if wait > max_wait_s:
        raise RestError(
            f"{url}: HTTP {status} with Retry-After {wait:g} s (more than {setting}={max_wait_s:g})"
        )
    log.warning("REST %s: HTTP %d, waiting Retry-After %.1f s", url, status, wait)
    return Wait(wait)


class RestClient:
    """The GET loop both venues' REST clients share: through the token bucket, retried on network
    errors, bad JSON and whatever ``answer`` calls a retry, with capped backoff, ``REST_RETRIES``
    attempts. Subclasses set ``session``, ``bucket``, ``settings`` (with ``backoff_initial_s`` and
    ``backoff_max_s``) and ``requests``."""

    session: aiohttp.ClientSession
    bucket: TokenBucket
    settings: Any  # CoinbaseSettings or BinanceSettings: their backoff_* fields
    requests: int

    async def get_answer(
        self, url: str, params: Mapping[str, str], answer: Callable[[int, Mapping[str, str], bytes], object]
    ) -> object:
        """``answer(status, headers, body)`` returns the result, ``RETRY``, a ``Wait``, or raises."""
        for attempt in range(REST_RETRIES):
            await self.bucket.acquire()
            self.requests += 1
            try:
                async with self.session.get(
                    url, params=params, timeout=aiohttp.ClientTimeout(total=REST_TIMEOUT_S)
                ) as resp:
                    outcome = answer(resp.status, resp.headers, await resp.read())
                    if isinstance(outcome, Wait):
                        await asyncio.sleep(outcome.seconds)
                        continue
                    if outcome is not RETRY:
                        return outcome
                    why = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            delay = backoff_delay(attempt, self.settings.backoff_initial_s, self.settings.backoff_max_s)
            log.warning("REST %s failed (%s); retry in %.2f s", url, why, delay)
            await asyncio.sleep(delay)
        raise RestError(f"{url} {dict(params)}: gave up after {REST_RETRIES} attempts")


class RestError(RuntimeError):
    """The REST API answered with an error that retrying did not fix."""


def parse_page(
    elements: Iterable[object],
    parse: Callable[[object, str, datetime], Trade],
    product_id: str,
    received: datetime,
    on_invalid: InvalidCallback,
) -> list[Trade]:
    """The trades of one REST page (``parse`` is the venue's ``parse_rest_trade``); an element it
    refuses goes to ``on_invalid`` with its reason."""
    trades = []
    for obj in elements:
        try:
            trades.append(parse(obj, product_id, received))
        except InvalidTrade as exc:
            on_invalid(orjson.dumps(obj), str(exc))
    return trades
