"""The one path every source takes: raw frame -> parse -> Trade -> produce (or dead-letter).

WebSocket, replay and synthetic frames enter through :meth:`Pipeline.handle`; REST backfill trades
(already parsed) through :meth:`Pipeline.publish_backfill`. Nothing raised by bad input escapes:
such frames go to the dead-letter topic with their reason. Well-formed frames of channels the
pipeline does not use (level2, ticker, ...) are counted by type and skipped, not dead-lettered.
Dead letters are logged at most once per :data:`DEAD_LETTER_LOG_EVERY_S` with how many were not
logged since, so a file full of bad frames does not flood the terminal (every one is still on the
DLQ topic and in ``coinbase_dead_letters_total``).

A :class:`Venue` says which exchange the frames come from and how to parse them: Coinbase (the
default) or Binance, each with its own synthetic twin (``synthetic``, ``synthetic-binance``:
:mod:`ingestion.sources`), so synthetic trades never share a key with real ones. Binance's live
duplicates (the two connections of a handover deliver the same trades) are dropped by trade id;
Coinbase's are published (silver keeps one row per trade id), as they always were.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from infrastructure.settings import Settings
from ingestion import binance_parser, coinbase_parser
from ingestion.continuity import Continuity, Gap
from ingestion.dead_letters import named_trade
from ingestion.events import InvalidTrade, Source, Trade, message_key
from ingestion.frames import Control, ExchangeError, Heartbeat, Parsed, Skipped
from ingestion.metrics import IngestMetrics
from ingestion.producer import TradeProducer
from ingestion.sources import SYNTHETIC_BINANCE_EXCHANGE, SYNTHETIC_EXCHANGE

log = logging.getLogger(__name__)
DEAD_LETTER_LOG_EVERY_S = 10.0


class EveryInterval:
    """Lets one event through per ``interval_s`` of ``clock`` and counts the ones held back.

    :meth:`allow` returns None to stay quiet, else how many were held back since the last one let
    through (0 for the first)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.held_back = 0
        self._next = float("-inf")

    def allow(self) -> int | None:
        now = self.clock()
        if now < self._next:
            self.held_back += 1
            return None
        held, self.held_back = self.held_back, 0
        self._next = now + self.interval_s
        return held


# (raw frame, receive time, source, exchange to stamp) -> what the frame is
Parse = Callable[[bytes | str, datetime, Source, str], Parsed]


@dataclass(frozen=True)
class Venue:
    """One exchange as the pipeline sees it: its name, its synthetic twin's, its products and parser."""

    exchange: str
    synthetic_exchange: str
    products: frozenset[str]
    parse: Parse
    drop_duplicates: bool = False  # live duplicates dropped (True) or published for silver to fold


def coinbase_venue(settings: Settings) -> Venue:
    products, max_bytes, parse = (
        frozenset(settings.products),
        settings.coinbase.max_frame_bytes,
        coinbase_parser.parse_frame,
    )

    def parse_coinbase(raw: bytes | str, received: datetime, source: Source, exchange: str) -> Parsed:
        return parse(raw, received, source, products, max_bytes, exchange)

    return Venue(coinbase_parser.EXCHANGE, SYNTHETIC_EXCHANGE, products, parse_coinbase)


def binance_venue(settings: Settings, symbols: Mapping[str, str]) -> Venue:
    """``symbols``: symbol -> product id, from the venue's exchangeInfo (or the synthetic twin's)."""
    symbols, max_bytes, parse = dict(symbols), settings.binance.max_frame_bytes, binance_parser.parse_frame

    def parse_binance(raw: bytes | str, received: datetime, source: Source, exchange: str) -> Parsed:
        return parse(raw, received, source, symbols, max_bytes, exchange)

    return Venue(
        binance_parser.EXCHANGE, SYNTHETIC_BINANCE_EXCHANGE, frozenset(symbols.values()), parse_binance, True
    )


@dataclass
class Counts:
    frames: int = 0
    trades: int = 0
    heartbeats: int = 0
    dead_letters: int = 0
    skipped: int = 0
    gaps: int = 0
    backfilled: int = 0
    duplicates: int = 0


class Pipeline:
    def __init__(
        self, settings: Settings, producer: TradeProducer, metrics: IngestMetrics, venue: Venue | None = None
    ) -> None:
        self.venue = venue = venue or coinbase_venue(settings)
        self.products = venue.products
        self.producer = producer
        self.metrics = metrics
        self.continuity = Continuity(exchange=venue.exchange)
        self.counts = Counts()
        self._parse = venue.parse
        self._drop_duplicates = venue.drop_duplicates
        # resolved once: label lookups are too slow for the per-message path
        self._keys = {
            (exchange, p): message_key(exchange, p)
            for exchange in (venue.exchange, venue.synthetic_exchange)
            for p in self.products
        }
        self._dead_letter_log = EveryInterval(DEAD_LETTER_LOG_EVERY_S)
        self._received = metrics.received
        self._trades = metrics.trades
        for product in self.products:
            self._trades.setdefault(product, 0)
        self._observe_latency = metrics.latency.observe
        self._send = producer.send

    def handle(self, raw: bytes | str, receive_time: datetime, source: Source) -> Gap | None:
        """Process one frame; return the trade-id gap it reveals (the caller may backfill it)."""
        counts = self.counts
        counts.frames += 1
        venue = self.venue
        exchange = venue.synthetic_exchange if source == "synthetic" else venue.exchange
        try:
            parsed = self._parse(raw, receive_time, source, exchange)
        except InvalidTrade as exc:
            self._received["invalid"] += 1
            return self._refused(raw, str(exc), source)
        if type(parsed) is Trade:
            self._received["match"] += 1
            counts.trades += 1
            product = parsed.product_id
            self._trades[product] += 1
            gap = self.continuity.observe_trade(product, parsed.trade_id)
            if self.continuity.seen(product, parsed.trade_id):
                self._duplicate(product)
                if self._drop_duplicates:
                    return None
            self._observe_latency((receive_time - parsed.event_time).total_seconds())
            self._send(parsed.to_wire(), self._keys[exchange, product])
            return None if gap is None else self._gap(gap)
        if type(parsed) is Heartbeat:
            self._received["heartbeat"] += 1
            counts.heartbeats += 1
            return self._gap(self.continuity.observe_heartbeat(parsed.product_id, parsed.last_trade_id))
        if type(parsed) is Skipped:
            self._received["skipped"] += 1
            counts.skipped += 1
            self.metrics.skipped.labels(type=parsed.type).inc()
            return None
        if type(parsed) is ExchangeError:
            self._received["error"] += 1
            self.metrics.exchange_errors.inc()
            log.warning("%s error frame: %s (%s)", venue.exchange, parsed.message, parsed.reason)
            return None
        assert type(parsed) is Control
        if parsed.type == "subscriptions":
            self._received["subscriptions"] += 1
            log.info("subscribed: %s", parsed.payload.get("channels"))
        else:
            self._received["control"] += 1
            log.info("%s control frame: %s", venue.exchange, parsed.type)
        return None

    def publish_backfill(self, trade: Trade) -> None:
        """A trade fetched from REST to fill a gap; published even if also seen on the socket."""
        if self.continuity.seen(trade.product_id, trade.trade_id):
            self._duplicate(trade.product_id)
        self.counts.backfilled += 1
        self.metrics.backfilled.labels(product=trade.product_id).inc()
        self.producer.send(trade.to_wire(), self._keys.get((trade.exchange, trade.product_id)) or trade.key)

    def dead_letter(
        self, raw: bytes | str, reason: str, source: str | None, product: str | None = None
    ) -> None:
        """``product``: the product a refused trade belongs to, when known (keys the DLQ message)."""
        self.counts.dead_letters += 1
        self.metrics.dead_letters.inc()
        held_back = self._dead_letter_log.allow()
        if held_back is not None:
            more = f" ({held_back} more dead letters not logged since the last line)" if held_back else ""
            log.warning("dead-lettered a %s frame: %s%s", source, reason, more)
        exchange = self.venue.synthetic_exchange if source == "synthetic" else self.venue.exchange
        key = self._keys.get((exchange, product)) if product is not None else None
        self.producer.dead_letter(raw, reason, source, key)

    def _refused(self, raw: bytes | str, reason: str, source: Source) -> None:
        """Dead-letter a bad frame. One that names the product's next trade id proves that trade
        happened: continuity counts it as seen, so the id is not reported (and backfilled) as a
        missed gap. Only the next id: the id of a corrupt frame may be corrupt too, and a leap to
        it would hide the real ids after it."""
        named = named_trade(raw)
        product = named[0] if named is not None and named[0] in self.products else None
        self.dead_letter(raw, reason, source, product)
        if product is not None and named is not None:
            last = self.continuity.last_trade_id(product)
            if last is not None and named[1] == last + 1:
                self.continuity.observe_trade(product, named[1])

    def _duplicate(self, product: str) -> None:
        self.counts.duplicates += 1
        self.metrics.duplicates.labels(product=product).inc()

    def _gap(self, gap: Gap | None) -> Gap | None:
        if gap is not None:
            self.counts.gaps += 1
            self.metrics.gaps.labels(product=gap.product_id).inc()
            self.metrics.gap_trades.labels(product=gap.product_id).inc(gap.missing)
            log.warning(
                "gap in %s: trade ids %d..%d missed", gap.product_id, gap.after_id + 1, gap.before_id - 1
            )
        return gap
