"""What a venue's pure parser returns besides a trade: the frame kinds every venue shares.

Each exchange's parser (``coinbase_parser``, ``binance_parser``) turns one raw frame into a
:class:`~ingestion.events.Trade` or one of these; the pipeline acts on the kind, never on the venue.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingestion.events import Trade


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Coinbase's ``{"type": "heartbeat", "sequence": 90, "last_trade_id": 20, "product_id": "BTC-USD",
    "time": "2014-11-07T08:19:28.464459Z"}``: the product's latest trade id, sent every second."""

    product_id: str
    last_trade_id: int
    sequence: int | None


@dataclass(frozen=True, slots=True)
class Control:
    """A frame that only confirms or announces state: Coinbase's ``subscriptions`` reply to our
    subscribe, Binance's ``serverShutdown`` notice or ``{"result": null, "id": 1}`` answer."""

    type: str
    payload: dict


@dataclass(frozen=True, slots=True)
class Skipped:
    """A well-formed frame of a channel the pipeline does not use, e.g. a Coinbase level2 update::

    {"type": "l2update", "product_id": "BTC-USD", "changes": [["buy", "10101.80", "0.162567"]],
     "time": "2019-08-14T20:42:27.265Z"}

    Only its ``type`` (one of the parser's fixed set of skipped types) is kept, for the metric."""

    type: str


@dataclass(frozen=True, slots=True)
class ExchangeError:
    """An error the venue sent, e.g. Coinbase's ``{"type": "error", "message": "Failed to subscribe",
    "reason": "BTC-XYZ is not a valid product"}`` or Binance's ``{"code": 2, "msg": "Invalid request"}``."""

    message: str
    reason: str


Parsed = Trade | Heartbeat | Control | Skipped | ExchangeError
