"""Wires a source (live Coinbase or Binance, replay, synthetic) to the pipeline and producer, and runs it.

One process runs one venue (``--source coinbase``, ``--source binance`` or ``--source coingecko``,
the reference-price poller; replay and synthetic frames are in the format of ``--venue``): a venue's outage, ban or restart never touches the
other's, each keeps its own REST rate budget and gap worker, and each serves its metrics on its own
port, which Prometheus labels with the exchange.

The run ends when the source is exhausted, ``--max-messages`` frames were handled, ``--duration``
elapsed, SIGINT/SIGTERM arrived, or :meth:`Ingestor.request_stop` was called (thread-safe); in
every case the producer is flushed before :meth:`Ingestor.run` returns. Gaps found on the live feed
are filled from REST by one background worker (serially, so the rate limit is shared).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import aiohttp
import tenacity
from confluent_kafka import KafkaException

from infrastructure.bootstrap import ensure_topics
from infrastructure.retrying import until_stopped
from infrastructure.settings import Settings
from ingestion.binance_rest import BinanceRest
from ingestion.binance_ws import BinanceFeed
from ingestion.coinbase_rest import CoinbaseRest
from ingestion.coinbase_ws import CoinbaseFeed
from ingestion.coingecko_parser import EXCHANGE
from ingestion.coingecko_poller import (
    SYNTHETIC_SOURCE,
    ReferenceCounts,
    ReferencePublisher,
    poll_coingecko,
    run_synthetic_reference,
)
from ingestion.continuity import Gap
from ingestion.events import Source
from ingestion.metrics import IngestMetrics
from ingestion.pipeline import Counts, Pipeline, Venue, binance_venue, coinbase_venue
from ingestion.producer import Interrupted, TradeProducer
from ingestion.sources import (
    paced_delay,
    read_recording,
    synthetic_binance_frames,
    synthetic_binance_symbols,
    synthetic_frames,
)
from ingestion.venue_io import RestError

log = logging.getLogger(__name__)
# starts the line ``--source auto`` prints when it falls back (``lakehouse demo`` relays that line)
FALLBACK_NOTICE = "live Coinbase feed unreachable"
REFERENCE_FALLBACK_NOTICE = (
    "live CoinGecko API unreachable"  # the same for ``--source auto --venue coingecko``
)
SourceName = Literal["coinbase", "binance", "coingecko", "replay", "synthetic", "auto"]
VenueName = Literal["coinbase", "binance", "coingecko"]
TICK_S = 0.5  # serve delivery callbacks and refresh gauges this often even when no frame arrives
TOPICS_TIMEOUT_S = 10.0  # one attempt to reach the broker and create the topics
YIELD_EVERY = 1000  # unpaced sources give the event loop a turn this often (signals, ticker)


@dataclass(frozen=True)
class RunOptions:
    source: SourceName
    # whose format synthetic and replayed frames are in (``--source binance`` implies binance)
    venue: VenueName = "coinbase"
    replay_file: Path | None = None
    speed: float = 1.0  # replay and synthetic: 1 = original pace, N = N times faster, 0 = unpaced
    rate_per_s: float | None = None  # synthetic: overrides settings.synthetic.rate_per_s
    seed: int | None = None  # synthetic: overrides settings.synthetic.seed
    max_messages: int | None = None
    duration_s: float | None = None
    serve_metrics: bool = True
    flush_timeout_s: float = 60.0


@dataclass
class Summary:
    source: str
    counts: Counts
    acked: int
    dead_lettered: int
    failed: int
    unsent: int
    restarts: int = 0
    resent: int = 0
    pending_gaps: list[Gap] = field(default_factory=list)
    reference: ReferenceCounts | None = None  # a reference-price run (coingecko) counts these instead

    def line(self) -> str:
        if self.reference is not None:
            return (
                f"source={self.source} {self.reference.line()} acked={self.acked} "
                f"dlq_acked={self.dead_lettered} failed={self.failed} unsent={self.unsent}"
            )
        c = self.counts
        return (
            f"source={self.source} frames={c.frames} trades={c.trades} heartbeats={c.heartbeats} skipped={c.skipped} "
            f"dead_letters={c.dead_letters} gaps={c.gaps} backfilled={c.backfilled} "
            f"duplicates={c.duplicates} acked={self.acked} dlq_acked={self.dead_lettered} "
            f"failed={self.failed} unsent={self.unsent} producer_restarts={self.restarts} "
            f"resent={self.resent} pending_gaps={len(self.pending_gaps)}"
        )


class Ingestor:
    def __init__(
        self, settings: Settings, metrics: IngestMetrics | None = None, echo: Callable[[str], None] = print
    ) -> None:
        self.settings = settings
        self.metrics = metrics or IngestMetrics()
        self.echo = echo
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = False
        self.feed: CoinbaseFeed | BinanceFeed | None = None

    def request_stop(self) -> None:
        """Ask a running :meth:`run` to finish (flushing); safe to call from any thread."""
        self._stop_requested = True
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def run(self, options: RunOptions) -> Summary:
        settings = self.settings
        self._loop = asyncio.get_running_loop()
        self._stop = stop = asyncio.Event()
        if self._stop_requested:
            stop.set()
        venue_name = options.source if options.source in ("binance", "coingecko") else options.venue
        # before any handler or server is set up: a symbol the venue does not list ends the run here
        symbols = await self._binance_symbols(options) if venue_name == "binance" else {}
        # plain handlers, not the loop's: a send blocked on a full queue (broker away) holds the loop,
        # and must still see the stop (``should_stop``) so the run ends with its summary
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            # only the main thread may install handlers; tests run this in a worker thread
            with contextlib.suppress(ValueError):
                previous[sig] = signal.signal(sig, lambda *_: self.request_stop())
        ends = None if options.duration_s is None else time.monotonic() + options.duration_s

        def should_stop() -> bool:
            return self._stop_requested or (ends is not None and time.monotonic() >= ends)

        if options.serve_metrics:
            # one process per venue: each serves its own port (Prometheus labels the target's exchange)
            m = settings.metrics
            ports = {"binance": m.binance_producer_port, "coingecko": m.coingecko_producer_port}
            self.metrics.serve(m.host, ports.get(venue_name, m.producer_port))
        ready = self._ensure_topics(should_stop)
        reference = venue_name == "coingecko"
        topic = settings.kafka.reference_topic if reference else None
        producer = TradeProducer(settings.kafka, self.metrics, should_stop, settings.debug, topic)
        publisher = ReferencePublisher(settings, producer, self.metrics, EXCHANGE) if reference else None
        venue: Venue = (
            binance_venue(settings, symbols) if venue_name == "binance" else coinbase_venue(settings)
        )
        pipeline = Pipeline(settings, producer, self.metrics, venue)
        if options.duration_s is not None:
            self._loop.call_later(options.duration_s, stop.set)
        ticker = asyncio.create_task(self._tick(producer))
        pending: list[Gap] = []
        source = options.source
        try:
            if not ready:
                log.warning("stopped before Kafka at %s could be reached", settings.kafka.bootstrap_servers)
            elif publisher is not None:
                source = await self._run_reference(publisher, options)
            elif source in ("coinbase", "auto"):
                live = await self._run_coinbase(pipeline, options, pending, fallback=source == "auto")
                source = "coinbase" if live else "synthetic"
                if not live:
                    await self._run_synthetic(pipeline, options)
            elif source == "binance":
                await self._run_binance(pipeline, options, pending, symbols)
            elif source == "synthetic":
                await self._run_synthetic(pipeline, options)
            elif source == "replay":
                if options.replay_file is None:
                    raise ValueError("--source replay needs --file PATH")
                await self._run_replay(pipeline, options)
            else:
                raise ValueError(f"unknown source {source!r}")
        except Interrupted as exc:
            log.warning("%s: ending the run", exc)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            unsent = producer.flush(options.flush_timeout_s)
        return Summary(
            source, pipeline.counts, producer.acked, producer.dead_lettered, producer.failed, unsent,
            producer.restarts, producer.resent, pending, publisher.counts if publisher else None,
        )  # fmt: skip

    async def _run_reference(self, publisher: ReferencePublisher, options: RunOptions) -> str:
        """CoinGecko polls (``auto``: or, if the first fails, the synthetic twin's answers; ``synthetic``:
        those only) until stopped; ``--max-messages`` counts answers. Returns the source that ran."""
        stop = self._stop
        assert stop is not None
        if options.source in ("coingecko", "auto"):
            auto = options.source == "auto"
            live = await poll_coingecko(self.settings, publisher, stop, options.max_messages, fallback=auto)
            if live:
                return "coingecko"
            self.echo(
                f"{REFERENCE_FALLBACK_NOTICE} ({self.settings.coingecko.base_url}); "
                f"switching to the SYNTHETIC reference source ({SYNTHETIC_SOURCE})"
            )
        elif options.source != "synthetic":
            raise ValueError(
                f"--source {options.source} has no reference prices (coingecko, auto or synthetic)"
            )
        settings = self.settings
        publisher.source = SYNTHETIC_SOURCE
        rate = options.rate_per_s or settings.synthetic.rate_per_s
        seed = settings.synthetic.seed if options.seed is None else options.seed
        await run_synthetic_reference(
            settings, publisher, stop, seed, rate, options.speed, options.max_messages
        )
        return "synthetic"

    async def _binance_symbols(self, options: RunOptions) -> dict[str, str]:
        """Symbol -> product id: the venue's exchangeInfo for live trades (fetched once at start; a
        symbol it does not list fails the run with a line naming it; a replay of Binance frames asks
        it too), the synthetic venue's own table offline."""
        symbols = self.settings.binance.symbols
        if options.source == "synthetic":
            return synthetic_binance_symbols(symbols)
        async with aiohttp.ClientSession() as session:
            return await BinanceRest(self.settings.binance, session).exchange_info(symbols)

    def _ensure_topics(self, should_stop: Callable[[], bool]) -> bool:
        """The topics exist before the first send; a broker that is not up yet is waited for
        (capped backoff, one line per attempt). False if the run was stopped first."""

        kafka = self.settings.kafka
        try:
            until_stopped(
                f"reaching Kafka at {kafka.bootstrap_servers}",
                log,
                should_stop,
                self.settings.coinbase.backoff_max_s,
                self.settings.debug,
                retry=tenacity.retry_if_exception_type(KafkaException),
            )(ensure_topics, kafka, TOPICS_TIMEOUT_S)
        except KafkaException:
            if should_stop():
                return False
            raise
        return True

    # ------------------------------------------------------------ sources

    def _handle(
        self, pipeline: Pipeline, raw: bytes | str, received: datetime, source: Source, limit: int | None
    ):
        gap = pipeline.handle(raw, received, source)
        if limit is not None and pipeline.counts.frames >= limit:
            self._stop.set()  # type: ignore[union-attr]
        return gap

    async def _run_coinbase(
        self, pipeline: Pipeline, options: RunOptions, pending: list[Gap], fallback: bool
    ) -> bool:
        """Live Coinbase feed until stopped. With ``fallback``: False if it could not subscribe in time."""
        settings = self.settings

        def feed(on_frame, stop: asyncio.Event) -> CoinbaseFeed:
            return CoinbaseFeed(settings.coinbase, settings.products, on_frame, self.metrics, stop)

        async with aiohttp.ClientSession() as session:
            rest = CoinbaseRest(settings.coinbase, session)
            wait = settings.coinbase.subscribe_timeout_s if fallback else None
            return await self._run_live(
                pipeline, options, pending, feed, rest, settings.coinbase.ws_url, wait
            )

    async def _run_binance(
        self, pipeline: Pipeline, options: RunOptions, pending: list[Gap], symbols: dict[str, str]
    ) -> None:
        """Live Binance combined stream until stopped; ``symbols`` (symbol -> product id) from exchangeInfo."""
        settings = self.settings

        def feed(on_frame, stop: asyncio.Event) -> BinanceFeed:
            return BinanceFeed(settings.binance, tuple(symbols), on_frame, self.metrics, stop)

        async with aiohttp.ClientSession() as session:
            rest = BinanceRest(settings.binance, session)
            rest.symbols = {product: symbol for symbol, product in symbols.items()}
            await self._run_live(pipeline, options, pending, feed, rest, settings.binance.ws_url, None)

    async def _run_live(
        self,
        pipeline: Pipeline,
        options: RunOptions,
        pending: list[Gap],
        make_feed: Callable,
        rest: CoinbaseRest | BinanceRest,
        ws_url: str,
        fallback_wait_s: float | None,
    ) -> bool:
        """A venue's feed and its REST gap filler until stopped. With ``fallback_wait_s``: False if
        the feed did not subscribe within it."""
        stop = self._stop
        assert stop is not None
        gaps: asyncio.Queue[Gap] = asyncio.Queue()

        def on_frame(raw: bytes, received: datetime) -> None:
            if stop.is_set():
                return  # a bounded run has ended; later frames are not accepted
            gap = self._handle(pipeline, raw, received, "ws", options.max_messages)
            if gap is not None:
                gaps.put_nowait(gap)

        feed_stop = asyncio.Event()
        self.feed = feed = make_feed(on_frame, feed_stop)
        feed_task = asyncio.create_task(feed.run())
        backfill_task = asyncio.create_task(self._backfill(rest, gaps, pipeline, pending))
        try:
            if fallback_wait_s is not None:
                try:
                    await asyncio.wait_for(feed.subscribed.wait(), fallback_wait_s)
                except TimeoutError:
                    self.echo(
                        f"{FALLBACK_NOTICE} ({ws_url}: no subscription within {fallback_wait_s:g} s); "
                        "switching to the SYNTHETIC source (trades marked source=synthetic)"
                    )
                    return False
            await stop.wait()
        finally:
            feed_stop.set()
            feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed_task
            backfill_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await backfill_task
            while not gaps.empty():
                pending.append(gaps.get_nowait())
            if pending:
                log.warning("stopped with %d gaps not backfilled: %s", len(pending), pending)
        return True

    async def _backfill(
        self,
        rest: CoinbaseRest | BinanceRest,
        gaps: asyncio.Queue[Gap],
        pipeline: Pipeline,
        pending: list[Gap],
    ) -> None:
        while True:
            gap = await gaps.get()
            pending.append(gap)  # until it is filled: a stop mid-way reports it

            def invalid(raw: bytes, reason: str, product: str = gap.product_id) -> None:
                pipeline.dead_letter(raw, reason, "backfill", product)

            try:
                async for trade in rest.fill(gap, invalid):
                    pipeline.publish_backfill(trade)
            except RestError as exc:
                log.error("backfill of %s failed: %s", gap, exc)
                continue
            pending.remove(gap)

    async def _run_synthetic(self, pipeline: Pipeline, options: RunOptions) -> None:
        settings = self.settings
        rate = options.rate_per_s or settings.synthetic.rate_per_s
        seed = settings.synthetic.seed if options.seed is None else options.seed
        start = datetime.now(UTC)
        if options.venue == "binance":
            symbols = synthetic_binance_symbols(settings.binance.symbols)
            frames = synthetic_binance_frames(symbols, seed, start, rate)
        else:
            frames = synthetic_frames(settings.products, seed, start, rate)
        await self._paced(pipeline, ((t, f, None) for t, f in frames), options, "synthetic", start)

    async def _run_replay(self, pipeline: Pipeline, options: RunOptions) -> None:
        assert options.replay_file is not None
        await self._paced(pipeline, read_recording(options.replay_file), options, "replay", None)

    async def _paced(self, pipeline, items, options: RunOptions, source: Source, first) -> None:
        """Feed ``(time, frame, error)`` items at ``options.speed``; synthetic frames get a fresh receive
        time, replayed ones keep the receive time recorded with them."""
        stop = self._stop
        assert stop is not None
        loop = asyncio.get_running_loop()
        wall_start = loop.time()
        for n, (when, frame, error) in enumerate(items):
            if stop.is_set():
                return
            if error is not None:
                pipeline.dead_letter(frame, error, source)
                continue
            if first is None:
                first = when
            delay = paced_delay(first, when, wall_start, loop.time(), options.speed)
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return
            elif n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            received = datetime.now(UTC) if source == "synthetic" else when
            self._handle(pipeline, frame, received, source, options.max_messages)

    async def _tick(self, producer: TradeProducer) -> None:
        while True:
            producer.poll(0)
            await asyncio.sleep(TICK_S)
