"""Pure parsing of Binance spot market-stream frames (and REST trades) into the one trade event.

Everything here is a function of its arguments: no sockets, no clocks. A frame that cannot be
accepted raises :class:`~ingestion.events.InvalidTrade` whose message is the dead-letter reason.
Formats are those of Binance's spot API documentation (github.com/binance/binance-spot-api-docs,
``web-socket-streams.md`` "Trade Streams" / "Aggregate Trade Streams", ``rest-api.md``
"Old trade lookup" and "Exchange information"; read 2026-12-01).

- **Product ids** are canonical across venues: ``BTCUSDT`` is ``BTC-USDT``, built from the
  symbol's ``baseAsset`` and ``quoteAsset`` in ``GET /api/v3/exchangeInfo`` (:func:`symbol_products`),
  never by splitting the symbol's text (``BTCUSDT`` could be ``BTCU-SDT`` as far as a string knows).
- **Taker side from** ``m`` ("is the buyer the market maker?"): ``true`` means the resting order
  was the buy, so the aggressor sold: ``side="sell"``; ``false`` -> ``"buy"``. (Coinbase reports
  the maker side instead and is flipped in ``coinbase_parser``; both end as the taker side.)
- **Event time** is the trade time ``T`` (milliseconds since the epoch), not the event time ``E``
  (when the frame was built).
- **Decimals**: ``p`` and ``q`` are strings and become ``Decimal`` exactly as sent; a number is refused.
- **Aggregate trades** (``<symbol>@aggTrade``, what some recordings hold) become the same event
  with ``trade_id = AGGREGATE_ID_BASE + a`` (the aggregate id). Binance numbers aggregates and
  trades independently, so an aggregate id can equal a trade id of the same symbol: offset by
  2**62 they live in a disjoint range of the same int64 column (BTCUSDT's trade ids are near 5e9,
  2**62 is 4.6e18), stay consecutive (so the gap tracker works on them unchanged), and are
  recognisable by :func:`is_aggregate` without a new field in the wire contract. The raw frame
  (``"e": "aggTrade"``, with its first and last trade ids ``f``/``l``) is kept as always.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

import msgspec
import orjson

from ingestion.events import InvalidTrade, Source, Trade, load_json_object, parse_decimal
from ingestion.frames import Control, ExchangeError, Parsed, Skipped

EXCHANGE = "binance"
AGGREGATE_ID_BASE = 1 << 62
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FLOAT_EXACT_MS = 1 << 42  # below this, ms / 1000 through fromtimestamp is exact (see trade_time)
_from_timestamp = datetime.fromtimestamp
# Event types of the other spot market streams. A combined stream (or a capture) may carry them;
# the pipeline uses none, so they are counted by type and skipped, not dead-lettered.
SKIPPED_EVENTS = frozenset(
    ("kline", "24hrMiniTicker", "24hrTicker", "1hTicker", "4hTicker", "1dTicker", "depthUpdate",
     "avgPrice", "blockTrade", "referencePrice")
)  # fmt: skip
# announces a disconnection: the client opens its next connection at once (binance_ws)
SERVER_SHUTDOWN = "serverShutdown"


class _Trade(msgspec.Struct, tag_field="e", tag="trade", gc=False):
    """``<symbol>@trade`` payload fields the event needs (``E``, ``M`` are ignored)."""

    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool


class _AggTrade(msgspec.Struct, tag_field="e", tag="aggTrade", gc=False):
    s: str
    a: int
    p: str
    q: str
    T: int
    m: bool


class _Combined(msgspec.Struct, gc=False):
    stream: str
    data: _Trade | _AggTrade


_COMBINED_DECODER = msgspec.json.Decoder(_Combined)


def symbol_products(exchange_info: object, symbols: Iterable[str]) -> dict[str, str]:
    """``{"BTCUSDT": "BTC-USDT", ...}`` for ``symbols``, from a ``GET /api/v3/exchangeInfo`` answer::

        {"timezone": "UTC", "serverTime": 1565246363776, "rateLimits": [...],
         "symbols": [{"symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH",
                      "quoteAsset": "BTC", ...}]}

    Raises ``ValueError`` naming every configured symbol the venue does not list.
    """
    if not isinstance(exchange_info, dict) or not isinstance(exchange_info.get("symbols"), list):
        raise ValueError(f"exchangeInfo answer has no symbols list: {str(exchange_info)[:200]}")
    listed: dict[str, str] = {}
    for entry in exchange_info["symbols"]:
        if not isinstance(entry, dict):
            continue
        symbol, base, quote = entry.get("symbol"), entry.get("baseAsset"), entry.get("quoteAsset")
        if isinstance(symbol, str) and isinstance(base, str) and isinstance(quote, str) and base and quote:
            listed[symbol] = f"{base}-{quote}"
    wanted = [s.upper() for s in symbols]
    unknown = [s for s in wanted if s not in listed]
    if unknown:
        raise ValueError(f"Binance does not list symbol(s) {', '.join(unknown)} (exchangeInfo)")
    return {s: listed[s] for s in wanted}


def is_aggregate(trade_id: int) -> bool:
    """True for the id of an aggregate trade (``@aggTrade``), False for a trade (``@trade``)."""
    return trade_id >= AGGREGATE_ID_BASE


def trade_time(ms: object, name: str = "T") -> datetime:
    """UTC time from Binance's integer milliseconds since the epoch, exactly.

    ``fromtimestamp(ms / 1000)`` is three times cheaper than adding a ``timedelta`` (this runs once
    per trade) and exact below 2**42 ms (the year 2109): the quotient's rounding error is under a
    quarter of a microsecond there, and ``fromtimestamp`` rounds to the microsecond
    (``tests/unit/test_binance_parser.py`` checks it against the ``timedelta`` sum). Beyond, the
    exact sum is used."""
    if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
        raise InvalidTrade(f"{name} must be integer milliseconds since the epoch, got {ms!r}")
    return _from_timestamp(ms / 1000, UTC) if ms < FLOAT_EXACT_MS else EPOCH + timedelta(milliseconds=ms)


def parse_frame(
    raw: bytes | str,
    receive_time: datetime,
    source: Source,
    symbols: Mapping[str, str],
    max_bytes: int,
    exchange: str = EXCHANGE,
) -> Parsed:
    """One frame -> a trade, a skipped or control frame, or an error the venue sent.

    A combined-stream trade (``/stream?streams=btcusdt@trade``)::

        {"stream": "btcusdt@trade",
         "data": {"e": "trade", "E": 1672515782136, "s": "BTCUSDT", "t": 12345, "p": "0.001",
                  "q": "100", "T": 1672515782136, "m": true, "M": true}}

    becomes ``Trade(exchange="binance", product_id="BTC-USDT", trade_id=12345, side="sell", ...)``
    (``m`` true: the buyer was the maker, the taker sold). A raw-stream payload (``/ws/...``, no
    wrapper) is accepted too. ``symbols`` maps each configured symbol to its product id
    (:func:`symbol_products`). Raises ``InvalidTrade`` for frames that are oversized, not JSON, of an
    unknown kind, missing fields, for a symbol not configured, a wrapper naming another symbol than
    its payload, or with non-positive price or quantity.
    """
    if len(raw) > max_bytes:
        raise InvalidTrade(f"oversized frame: {len(raw)} bytes > {max_bytes}")
    # fast path: the frame that is nearly every frame, one typed C decode of a wrapped trade
    try:
        combined = _COMBINED_DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass  # another frame kind, or a bad trade: the general path below says exactly what
    else:
        data = combined.data
        product = symbols.get(data.s)
        aggregate = type(data) is _AggTrade
        trade_id = data.a if aggregate else data.t  # type: ignore[union-attr]
        if (
            product is not None
            and combined.stream.partition("@")[0] == data.s.lower()
            and 0 <= data.T < FLOAT_EXACT_MS
            and 0 <= trade_id < AGGREGATE_ID_BASE
        ):
            try:
                price, size = Decimal(data.p), Decimal(data.q)
            except InvalidOperation:
                pass  # the general path names the field
            else:
                return Trade(
                    exchange=exchange,
                    product_id=product,
                    trade_id=AGGREGATE_ID_BASE + trade_id if aggregate else trade_id,
                    price=price,
                    size=size,
                    side="sell" if data.m else "buy",
                    event_time=_from_timestamp(data.T / 1000, UTC),
                    receive_time=receive_time,
                    sequence=None,
                    source=source,
                    raw=raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace"),
                )
    obj = load_json_object(raw)
    stream = None
    if "stream" in obj and "data" in obj:
        stream, payload = obj["stream"], obj["data"]
        if not isinstance(stream, str):
            raise InvalidTrade(f"stream must be a string, got {stream!r}")
        if not isinstance(payload, dict):
            raise InvalidTrade(f"data of stream {stream!r} is not a JSON object")
        obj = payload
    kind = obj.get("e")
    if kind in ("trade", "aggTrade"):
        return _trade(obj, kind, stream, receive_time, source, symbols, raw, exchange)
    if kind == SERVER_SHUTDOWN:
        return Control(SERVER_SHUTDOWN, obj)
    if kind in SKIPPED_EVENTS:
        return Skipped(kind)
    if kind is None:
        if "code" in obj and "msg" in obj:  # {"code": 2, "msg": "Invalid request: ...", "id": 1}
            return ExchangeError(str(obj["msg"]), f"code {obj['code']}")
        if "result" in obj and "id" in obj:  # the answer to a SUBSCRIBE / LIST_SUBSCRIPTIONS request
            return Control("result", obj)
        if "lastUpdateId" in obj:  # <symbol>@depth<levels>: a partial book, no event type
            return Skipped("depth")
        if {"u", "s", "b", "a"} <= obj.keys():  # <symbol>@bookTicker, no event type either
            return Skipped("bookTicker")
    raise InvalidTrade(f"unknown event type {kind!r}")


@dataclass(frozen=True, slots=True)
class _Shape:
    """Where one of Binance's trade formats keeps each field (the stream's and REST's names differ)."""

    what: str  # for the dead-letter reason
    id: str
    price: str
    qty: str
    time: str
    maker: str
    aggregate: bool

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.id, self.price, self.qty, self.time, self.maker)


STREAM_TRADE = _Shape("trade", "t", "p", "q", "T", "m", aggregate=False)
STREAM_AGG = _Shape("aggTrade", "a", "p", "q", "T", "m", aggregate=True)
REST_TRADE = _Shape("REST trade", "id", "price", "qty", "time", "isBuyerMaker", aggregate=False)
REST_AGG = _Shape("REST aggregate trade", "a", "p", "q", "T", "m", aggregate=True)


def _trade(
    obj: dict,
    kind: str,
    stream: str | None,
    receive_time: datetime,
    source: Source,
    symbols: Mapping[str, str],
    raw: bytes | str,
    exchange: str,
) -> Trade:
    shape = STREAM_AGG if kind == "aggTrade" else STREAM_TRADE
    missing = [f for f in ("s", *shape.fields) if f not in obj]
    if missing:
        raise InvalidTrade(f"{kind} missing fields: {', '.join(missing)}")
    symbol = obj["s"]
    product = symbols.get(symbol) if isinstance(symbol, str) else None
    if product is None:
        raise InvalidTrade(f"unknown symbol {symbol!r}")
    if stream is not None and stream.partition("@")[0] != symbol.lower():
        raise InvalidTrade(f"stream {stream!r} carries a {symbol} {kind}")
    text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
    return _checked(obj, shape, product, exchange, receive_time, source, text)


def _checked(
    obj: dict, shape: _Shape, product: str, exchange: str, receive_time: datetime, source: Source, raw: str
) -> Trade:
    """The trade ``obj`` (of ``shape``, every field present) describes, or why it cannot be one."""
    trade_id = obj[shape.id]
    if not isinstance(trade_id, int) or isinstance(trade_id, bool) or not 0 <= trade_id < AGGREGATE_ID_BASE:
        kind = "an aggregate" if shape.aggregate else "a trade"
        raise InvalidTrade(f"{shape.id} must be {kind} id (a non-negative integer), got {trade_id!r}")
    maker = obj[shape.maker]
    if not isinstance(maker, bool):
        raise InvalidTrade(f"{shape.maker} must be true or false, got {maker!r}")
    return Trade(
        exchange=exchange,
        product_id=product,
        trade_id=AGGREGATE_ID_BASE + trade_id if shape.aggregate else trade_id,
        price=parse_decimal(obj[shape.price], "price"),
        size=parse_decimal(obj[shape.qty], "quantity"),
        side="sell" if maker else "buy",
        event_time=trade_time(obj[shape.time], shape.time),
        receive_time=receive_time,
        sequence=None,
        source=source,
        raw=raw,
    )


def _rest(obj: object, shape: _Shape, product_id: str, receive_time: datetime) -> Trade:
    if not isinstance(obj, dict):
        raise InvalidTrade(f"expected a JSON object, got {type(obj).__name__}")
    missing = [f for f in shape.fields if f not in obj]
    if missing:
        raise InvalidTrade(f"{shape.what} missing fields: {', '.join(missing)}")
    return _checked(obj, shape, product_id, EXCHANGE, receive_time, "backfill", orjson.dumps(obj).decode())


def parse_rest_trade(obj: object, product_id: str, receive_time: datetime) -> Trade:
    """One element of ``GET /api/v3/historicalTrades`` (oldest first) -> a ``backfill`` Trade::

        {"id": 28457, "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.000012",
         "time": 1499865549590, "isBuyerMaker": true, "isBestMatch": true}

    ``isBuyerMaker`` is the stream's ``m``: true -> the taker sold.
    """
    return _rest(obj, REST_TRADE, product_id, receive_time)


def parse_rest_agg_trade(obj: object, product_id: str, receive_time: datetime) -> Trade:
    """One element of ``GET /api/v3/aggTrades`` (oldest first) -> a ``backfill`` Trade in the
    aggregate id range::

        {"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781, "l": 27781,
         "T": 1498793709153, "m": true, "M": true}
    """
    return _rest(obj, REST_AGG, product_id, receive_time)


def stream_names(symbols: Iterable[str], channel: Literal["trade", "aggTrade"] = "trade") -> list[str]:
    """``["btcusdt@trade", ...]``: stream names are the symbol in lower case, then the channel."""
    return [f"{s.lower()}@{channel}" for s in symbols]
