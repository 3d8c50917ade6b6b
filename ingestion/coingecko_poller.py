"""The reference-price loop: every ``coingecko.poll_interval_s`` one ``/simple/price`` answer ->
parser -> one event per changed (coin id, vs currency) on ``kafka.reference_topic``; every pair
the answer gives no usable price for is dead-lettered with its reason and counted by kind.

CoinGecko caches ``/simple/price`` (60 s on the public API, 30 s on Pro), so two polls often see
the same ``last_updated_at``: an event is published only when a pair's ``last_updated_at`` or price
moved since this process last published it (one remembered value per polled pair: bounded by the
settings), counted as ``unchanged`` otherwise. A poll that fails (network, 5xx after retries, a 4xx,
a ``Retry-After`` beyond ``coingecko.max_wait_s``) is logged in one line and counted; the next
interval asks again.

``--source auto --venue coingecko`` (what ``lakehouse demo`` runs) polls CoinGecko and, if its first
poll fails, switches to the synthetic twin for the rest of the run. The synthetic twin
(``--source synthetic --venue coingecko``, source ``synthetic-coingecko``) writes
answers in the same format from the synthetic trade walk (:mod:`ingestion.sources`) and sends them
through the same parser, so the offline stack has a reference feed whose prices follow the
synthetic trades (see :func:`synthetic_answers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import orjson
from prometheus_client import Counter

from infrastructure.settings import Settings
from ingestion.coingecko_parser import EXCHANGE, REFUSED_KINDS, Answer, parse_simple_price
from ingestion.coingecko_rest import CoinGeckoRest, session_headers
from ingestion.metrics import IngestMetrics
from ingestion.producer import TradeProducer
from ingestion.reference_events import InvalidReference
from ingestion.sources import GENERIC, INSTRUMENTS, synthetic_frames
from ingestion.venue_io import RestError

log = logging.getLogger(__name__)
SYNTHETIC_SOURCE = "synthetic-coingecko"  # never a real source's name: keys never meet real ones


@dataclass
class ReferenceCounts:
    polls: int = 0
    failed_polls: int = 0
    prices: int = 0  # events published
    unchanged: int = 0
    refused: int = 0  # pairs dead-lettered

    def line(self) -> str:
        return (
            f"polls={self.polls} failed_polls={self.failed_polls} prices={self.prices} "
            f"unchanged={self.unchanged} refused={self.refused}"
        )


class ReferenceMetrics:
    """The poller's series, in the producer's registry (served on ``metrics.coingecko_producer_port``)."""

    def __init__(self, metrics: IngestMetrics) -> None:
        r = metrics.registry
        self.polls = Counter(
            "lakehouse_reference_polls_total", "Reference-price polls by outcome (ok | failed)", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.prices = Counter(
            "lakehouse_reference_prices_total", "Reference-price events published, by product", ["product"],
            registry=r,
        )  # fmt: skip
        self.unchanged = Counter(
            "lakehouse_reference_unchanged_total",
            "Polled pairs not published because the API's answer had not moved (its cache)",
            registry=r,
        )
        self.refused = Counter(
            "lakehouse_reference_refused_total",
            "Polled pairs dead-lettered, by kind (missing_id | missing_currency | null_price | invalid)",
            ["kind"],
            registry=r,
        )
        self.rate_limited = Counter(
            "lakehouse_reference_rate_limited_total", "HTTP 429 answers from the reference API", registry=r
        )
        for kind in REFUSED_KINDS:
            self.refused.labels(kind=kind)
        for outcome in ("ok", "failed"):
            self.polls.labels(outcome=outcome)


class ReferencePublisher:
    """Parsed answers -> the reference topic and the DLQ (no I/O of its own beyond the producer)."""

    def __init__(
        self, settings: Settings, producer: TradeProducer, metrics: IngestMetrics, source: str
    ) -> None:
        self.pairs = settings.coingecko.pair_products()
        self.producer = producer
        self.metrics = ReferenceMetrics(metrics)
        self.source = source
        self.counts = ReferenceCounts()
        # (coin, vs) -> (event time, price) last published: one entry per polled pair
        self._last: dict[tuple[str, str], tuple[datetime, Decimal]] = {}

    def publish(self, body: bytes, received: datetime) -> Answer | None:
        """Publish one answer's changed prices and dead-letter its refused pairs."""
        self.counts.polls += 1
        self.metrics.polls.labels(outcome="ok").inc()
        try:
            answer = parse_simple_price(body, received, self.pairs, self.source)
        except InvalidReference as exc:
            self._refuse(body, str(exc), "invalid", None)
            return None
        for price in answer.prices:
            pair = (price.coin_id, price.vs_currency)
            if self._last.get(pair) == (price.event_time, price.price):
                self.counts.unchanged += 1
                self.metrics.unchanged.inc()
                continue
            self._last[pair] = (price.event_time, price.price)
            self.producer.send(price.to_wire(), price.key)
            self.counts.prices += 1
            self.metrics.prices.labels(product=price.product_id).inc()
        for refused in answer.refused:
            self._refuse(body, refused.reason, refused.kind, f"{self.source}:{refused.product_id}".encode())
        return answer

    def failed_poll(self, reason: str) -> None:
        self.counts.polls += 1
        self.counts.failed_polls += 1
        self.metrics.polls.labels(outcome="failed").inc()
        log.error("reference poll failed: %s", reason)

    def _refuse(self, body: bytes, reason: str, kind: str, key: bytes | None) -> None:
        self.counts.refused += 1
        self.metrics.refused.labels(kind=kind).inc()
        log.warning("reference price refused: %s", reason)
        self.producer.dead_letter(body, reason, "poll" if self.source == EXCHANGE else "synthetic", key)


async def poll_coingecko(
    settings: Settings,
    publisher: ReferencePublisher,
    stop: asyncio.Event,
    max_polls: int | None = None,
    fallback: bool = False,
) -> bool:
    """Poll until ``stop`` (or ``max_polls`` answers or failures); the first poll at once. With
    ``fallback``: return False, having published nothing, if the first poll fails (the API is not
    reachable from here); True otherwise."""
    coingecko = settings.coingecko
    async with aiohttp.ClientSession(headers=session_headers(coingecko)) as session:
        client = CoinGeckoRest(coingecko, session)
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            limited = client.rate_limited
            try:
                answer = await _unless_stopped(client.simple_price(), stop)
                if answer is None:
                    return True  # stopped mid-request (its retries can take a minute): nothing to publish
                body, received = answer
            except RestError as exc:
                if fallback and publisher.counts.polls == 0:
                    log.warning("reference poll failed: %s", exc)
                    return False
                publisher.failed_poll(str(exc))
            else:
                publisher.publish(body, received)
            publisher.metrics.rate_limited.inc(client.rate_limited - limited)
            if max_polls is not None and publisher.counts.polls >= max_polls:
                return True
            wait = coingecko.poll_interval_s - (loop.time() - started)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
    return True


async def _unless_stopped(request, stop: asyncio.Event):
    """``request``'s result, or None (the request cancelled) once ``stop`` is set first."""
    fetch, stopped = asyncio.ensure_future(request), asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not fetch.done():
        fetch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetch
        return None
    return fetch.result()


def synthetic_answers(
    settings: Settings, seed: int, start: datetime, rate_per_s: float
) -> Iterator[tuple[datetime, bytes]]:
    """Endless ``(time, answer)`` pairs, one per ``coingecko.poll_interval_s`` of synthetic time, in
    ``/simple/price``'s format: each pair's price is the synthetic trade walk's last price of its
    product at that time.

    The walk is :func:`ingestion.sources.synthetic_frames` with the same seed and rate over the
    products the pairs map to, in the order of ``settings.products`` (the default pairs map to
    exactly those): a synthetic trade run started at the same time with the same seed and rate
    trades at these very prices, and one started a few seconds apart stays within the walk's
    few-second drift (about 0.02 % per trade step). A product outside ``settings.products`` gets
    the walk of its own instrument. ``last_updated_at`` is the whole second the price is from."""
    pairs = settings.coingecko.pair_products()
    wanted = set(pairs.values())
    products = tuple(p for p in settings.products if p in wanted) + tuple(
        sorted(wanted - set(settings.products))
    )
    interval = timedelta(seconds=settings.coingecko.poll_interval_s)
    last: dict[str, str] = {}
    due = start + interval
    for when, frame in synthetic_frames(products, seed, start, rate_per_s):
        if when >= due:
            yield due, _answer_body(pairs, last, due)
            due += interval
        match = orjson.loads(frame)
        if match["type"] == "match":
            last[match["product_id"]] = match["price"]


def _answer_body(pairs: dict[tuple[str, str], str], last: dict[str, str], when: datetime) -> bytes:
    """The answer's JSON text, prices written as JSON numbers exactly as the walk's decimal text."""
    seconds = int(when.timestamp())
    coins: dict[str, list[str]] = {}
    for (coin, vs), product in pairs.items():
        price = last.get(product) or _start_price(product)
        coins.setdefault(coin, []).append(f'"{vs}":{price}')
    return (
        "{"
        + ",".join(
            f'"{coin}":{{{",".join(fields)},"last_updated_at":{seconds}}}' for coin, fields in coins.items()
        )
        + "}"
    ).encode()


def _start_price(product: str) -> str:
    spec = INSTRUMENTS.get(product, GENERIC)
    whole, frac = divmod(spec.start_price, 10**spec.price_decimals)
    return f"{whole}.{frac:0{spec.price_decimals}d}"


async def run_synthetic_reference(
    settings: Settings,
    publisher: ReferencePublisher,
    stop: asyncio.Event,
    seed: int,
    rate_per_s: float,
    speed: float,
    max_polls: int | None = None,
) -> None:
    """Publish :func:`synthetic_answers` at ``speed`` (1 = one answer per poll interval, 0 = unpaced)."""
    start = datetime.now(UTC)
    loop = asyncio.get_running_loop()
    wall_start = loop.time()
    for n, (when, body) in enumerate(synthetic_answers(settings, seed, start, rate_per_s)):
        if stop.is_set():
            return
        if speed > 0:
            delay = (when - start).total_seconds() / speed - (loop.time() - wall_start)
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return
        elif n % 100 == 0:
            await asyncio.sleep(0)
        publisher.publish(body, datetime.now(UTC) if speed > 0 else when)
        if max_polls is not None and publisher.counts.polls >= max_polls:
            return
