"""Per-product ``trade_id`` continuity: which trade ids were missed, and which were seen twice.

One tracker per venue (the exchange is stamped on every :class:`Gap` it reports, so the worker that
fills it asks that venue's REST API). Coinbase and Binance trade ids are both consecutive per
product. A jump between two trades, or a heartbeat whose
``last_trade_id`` is ahead of the last trade seen, means trades were missed (a dropped connection,
a reconnect): that range is a :class:`Gap` to fill from the REST API. Pure state, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RECENT_IDS = 50_000  # per product: enough to recognise a backfilled trade also seen on the socket


@dataclass(frozen=True, slots=True)
class Gap:
    """Trade ids ``after_id + 1 .. before_id - 1`` of ``product_id`` on ``exchange`` were not seen."""

    product_id: str
    after_id: int
    before_id: int
    exchange: str = "coinbase"

    @property
    def missing(self) -> int:
        return self.before_id - self.after_id - 1


@dataclass
class _Product:
    last: int | None = None
    recent: set[int] = field(default_factory=set)


class Continuity:
    """Tracks the highest trade id per product and a bounded window of ids already seen."""

    def __init__(self, recent_ids: int = RECENT_IDS, exchange: str = "coinbase") -> None:
        self._products: dict[str, _Product] = {}
        self._recent_ids = recent_ids
        self.exchange = exchange

    def last_trade_id(self, product_id: str) -> int | None:
        state = self._products.get(product_id)
        return None if state is None else state.last

    def seen(self, product_id: str, trade_id: int) -> bool:
        """Record ``trade_id``; True if it was seen before (a duplicate, e.g. from socket and REST).

        Remembers about the last ``recent_ids`` ids below the highest one seen: older ids are
        forgotten in batches (amortized), which keeps this cheap on the per-message path.
        """
        state = self._products.get(product_id)
        if state is None:
            state = self._products[product_id] = _Product()
        recent = state.recent
        if trade_id in recent:
            return True
        recent.add(trade_id)
        if len(recent) > 2 * self._recent_ids:
            floor = max(recent) - self._recent_ids
            state.recent = {i for i in recent if i > floor}
        return False

    def observe_trade(self, product_id: str, trade_id: int) -> Gap | None:
        """A trade from the live stream; returns the gap it reveals, if any."""
        state = self._products.get(product_id)
        if state is None:
            state = self._products[product_id] = _Product()
        last = state.last
        if last is None or trade_id > last:
            state.last = trade_id
            if last is not None and trade_id > last + 1:
                return Gap(product_id, last, trade_id, self.exchange)
        return None

    def observe_heartbeat(self, product_id: str, last_trade_id: int) -> Gap | None:
        """A heartbeat says the product's latest trade is ``last_trade_id``: anything after ours was missed."""
        state = self._products.get(product_id)
        if state is None or state.last is None:
            # nothing seen yet: trades before we connected are not ours to fill
            self._products.setdefault(product_id, _Product()).last = last_trade_id
            return None
        if last_trade_id > state.last:
            gap = Gap(product_id, state.last, last_trade_id + 1, self.exchange)
            state.last = last_trade_id
            return gap
        return None
