"""Offline frame sources: ``synthetic`` (a seeded random walk) and ``replay`` (a recorded file).

Both yield raw Coinbase-format frames, so they go through the same parser and producer as the
live feed. Generation is pure (a seeded generator); pacing is done by the caller from the
timestamps yielded alongside each frame.

Synthetic trades are their own venue: the pipeline stamps them ``exchange="synthetic"``
(:data:`SYNTHETIC_EXCHANGE`, never a real exchange's name), so their silver and gold keys
``(exchange, product_id, trade_id)`` can never meet a real Coinbase trade's. Across runs, the trade
ids of a run start at its start time in microseconds since the epoch (:func:`first_trade_id`) and
are consecutive per product from there (as Coinbase's are, so the continuity checks still apply).
A later run starts later, so its ids start above every id an earlier run could have reached, as
long as no run makes more than one trade per product per microsecond of wall time (the producer
tops out near 10^5 messages per second in all). Chosen over "continue from what the topic or
bronze holds" because it needs no read of the broker or the lakehouse before the first frame,
and a wiped topic or a second data folder cannot bring ids back. Ids near 1.8e15 are also far
from Coinbase's own range (below 1e10), which matters for anyone filtering by id alone.

Synthetic Binance (``--source synthetic --venue binance``) is the same walk written as Binance
combined-stream ``trade`` frames, through the Binance parser, as venue ``synthetic-binance``
(:data:`SYNTHETIC_BINANCE_EXCHANGE`): it never shares a key with real Binance trades, nor with
synthetic Coinbase-format ones. Its symbols' base and quote assets come from
:data:`SYNTHETIC_BINANCE_SYMBOLS`, the synthetic venue's own symbol metadata (offline there is no
exchangeInfo to ask).

Replay file format (what ``lakehouse record`` writes): zstd-compressed NDJSON, one object per
frame, in receive order::

    {"receive_time": "2024-05-01T12:00:00.123456Z", "frame": "{\\"type\\":\\"match\\",...}"}
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import zstandard

from ingestion.events import InvalidTrade, format_time, parse_time


@dataclass(frozen=True)
class Instrument:
    start_price: int  # in ticks
    price_decimals: int  # tick = 10**-price_decimals
    size_decimals: int  # base increment = 10**-size_decimals
    typical_size: float  # in base units, mean of an exponential


# Realistic tick sizes and base increments of the default products; others get a generic one.
INSTRUMENTS = {
    "BTC-USD": Instrument(65_000_00, 2, 8, 0.02),
    "ETH-USD": Instrument(3_400_00, 2, 8, 0.3),
    "SOL-USD": Instrument(150_00, 2, 8, 5.0),
    "DOGE-USD": Instrument(15_000, 5, 1, 2_000.0),
}
INSTRUMENTS |= {f"{p}T": spec for p, spec in INSTRUMENTS.items()}  # the same markets quoted in USDT
GENERIC = Instrument(100_00, 2, 8, 1.0)
HEARTBEAT_EVERY_S = 1.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SYNTHETIC_EXCHANGE = "synthetic"  # the venue of synthetic trades: never a real exchange's name
SYNTHETIC_BINANCE_EXCHANGE = "synthetic-binance"  # synthetic trades in Binance's format
# the synthetic Binance venue's symbol metadata: symbol -> product id (base-quote)
SYNTHETIC_BINANCE_SYMBOLS = {
    "BTCUSDT": "BTC-USDT", "ETHUSDT": "ETH-USDT", "SOLUSDT": "SOL-USDT", "DOGEUSDT": "DOGE-USDT",
}  # fmt: skip


def _decimal_text(units: int, decimals: int) -> str:
    """Integer ``units`` of ``10**-decimals`` as an exact decimal string (no float on the way)."""
    if decimals == 0:
        return str(units)
    whole, frac = divmod(units, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}"


def synthetic_frames(
    products: tuple[str, ...], seed: int, start: datetime, rate_per_s: float
) -> Iterator[tuple[datetime, bytes]]:
    """Endless ``(exchange time, frame)`` pairs: ``match`` frames at ``rate_per_s`` across all products,
    round-robin, and one ``heartbeat`` per product every second of exchange time.

    Deterministic for a given seed and start: the same run gives the same trades. Trade ids start
    at :func:`first_trade_id` of ``start``, so runs started at different times never share one.
    """
    rng = random.Random(seed)
    base = first_trade_id(start) - 1
    # per product: [instrument, price in ticks, last trade id]; trade ids are consecutive per product
    state = {
        p: [INSTRUMENTS.get(p, GENERIC), INSTRUMENTS.get(p, GENERIC).start_price, base] for p in products
    }
    step = timedelta(seconds=1 / rate_per_s)
    now = start
    sequence = 0
    next_heartbeat = start
    while True:
        if now >= next_heartbeat:
            for product in products:
                sequence += 1
                yield (
                    now,
                    orjson.dumps(
                        {
                            "type": "heartbeat",
                            "sequence": sequence,
                            "last_trade_id": state[product][2],
                            "product_id": product,
                            "time": format_time(now),
                        }
                    ),
                )
            next_heartbeat = now + timedelta(seconds=HEARTBEAT_EVERY_S)
        for product in products:
            spec, ticks, _ = entry = state[product]
            # a random walk in whole ticks, at least one tick above zero
            ticks = max(1, ticks + round(rng.gauss(0, max(1.0, ticks * 0.0002))))
            entry[1] = ticks
            trade_id = entry[2] = entry[2] + 1
            sequence += 1
            size_units = max(1, int(rng.expovariate(1 / spec.typical_size) * 10**spec.size_decimals))
            yield (
                now,
                orjson.dumps(
                    {
                        "type": "match",
                        "trade_id": trade_id,
                        "sequence": sequence,
                        "maker_order_id": _order_id(rng),
                        "taker_order_id": _order_id(rng),
                        "time": format_time(now),
                        "product_id": product,
                        "size": _decimal_text(size_units, spec.size_decimals),
                        "price": _decimal_text(ticks, spec.price_decimals),
                        "side": "buy" if rng.random() < 0.5 else "sell",
                    }
                ),
            )
            now += step


def synthetic_binance_symbols(symbols: tuple[str, ...]) -> dict[str, str]:
    """Symbol -> product id for the synthetic Binance venue, or ``ValueError`` naming the unknown ones."""
    unknown = [s for s in symbols if s not in SYNTHETIC_BINANCE_SYMBOLS]
    if unknown:
        raise ValueError(
            f"synthetic Binance has no symbol {', '.join(unknown)} (it knows {', '.join(SYNTHETIC_BINANCE_SYMBOLS)})"
        )
    return {s: SYNTHETIC_BINANCE_SYMBOLS[s] for s in symbols}


def synthetic_binance_frames(
    symbols: dict[str, str], seed: int, start: datetime, rate_per_s: float
) -> Iterator[tuple[datetime, bytes]]:
    """:func:`synthetic_frames`' walk for ``symbols`` (symbol -> product id) as Binance combined-stream
    ``trade`` frames (Binance has no heartbeat frames, so there are none)::

        {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1764633600121, "s": "BTCUSDT",
         "t": 1764633600121000, "p": "65000.00", "q": "0.01234567", "T": 1764633600121,
         "m": true, "M": true}}

    The walk's side is the maker's (Coinbase's convention), so ``m`` (the buyer was the maker) is
    maker side ``buy``. Times are whole milliseconds, as Binance sends them."""
    by_product = {product: symbol for symbol, product in symbols.items()}
    for now, frame in synthetic_frames(tuple(by_product), seed, start, rate_per_s):
        match = orjson.loads(frame)
        if match["type"] != "match":
            continue
        symbol = by_product[match["product_id"]]
        ms = (now - EPOCH) // timedelta(milliseconds=1)
        yield (
            now,
            orjson.dumps(
                {
                    "stream": f"{symbol.lower()}@trade",
                    "data": {
                        "e": "trade",
                        "E": ms,
                        "s": symbol,
                        "t": match["trade_id"],
                        "p": match["price"],
                        "q": match["size"],
                        "T": ms,
                        "m": match["side"] == "buy",
                        "M": True,
                    },
                }
            ),
        )


def first_trade_id(start: datetime) -> int:
    """The first trade id of a synthetic run started at ``start``: its microseconds since the epoch."""
    return (start - EPOCH) // timedelta(microseconds=1)


def _order_id(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


# ---------------------------------------------------------------- replay files


def record_line(frame: bytes | str, receive_time: datetime) -> bytes:
    text = frame.decode("utf-8", errors="replace") if isinstance(frame, bytes) else frame
    return orjson.dumps({"receive_time": format_time(receive_time), "frame": text}) + b"\n"


class RecordingWriter:
    """Appends frames to a zstd-compressed NDJSON replay file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("wb")
        self._writer = zstandard.ZstdCompressor(level=3).stream_writer(self._file)
        self.frames = 0

    def write(self, frame: bytes | str, receive_time: datetime) -> None:
        self._writer.write(record_line(frame, receive_time))
        self.frames += 1

    def close(self) -> None:
        self._writer.close()  # also closes the file and writes the zstd frame end


def read_recording(path: Path) -> Iterator[tuple[datetime | None, bytes | str, str | None]]:
    """``(receive_time, frame, None)`` per line of a replay file, or ``(None, line, reason)`` for a
    malformed line (the caller dead-letters it and carries on)."""
    with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        for number, line in enumerate(io.BufferedReader(reader), start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                frame = obj["frame"]
                if not isinstance(frame, str):
                    raise TypeError(f"frame must be a string, got {type(frame).__name__}")
                yield parse_time(obj["receive_time"], "receive_time"), frame, None
            except (orjson.JSONDecodeError, KeyError, TypeError, InvalidTrade) as exc:
                yield None, line.rstrip(b"\n"), f"replay line {number} malformed: {exc}"


def check_recording(path: Path) -> None:
    """Raise ``ValueError`` naming the file unless its first record is a replay line: a wrong or
    corrupt file is refused before any service is touched (later bad lines are dead-lettered)."""
    try:
        for _received, _frame, reason in read_recording(path):
            if reason is not None:
                raise ValueError(f"replay file {path}: {reason}")
            return
    except zstandard.ZstdError as exc:
        raise ValueError(f"replay file {path} is not zstd-compressed NDJSON ({exc})") from None
    raise ValueError(f"replay file {path} holds no frames")


def count_recording(path: Path) -> int:
    """How many frames a replay file holds (one decompressing pass: the total of a progress bar)."""
    with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        return sum(1 for line in io.BufferedReader(reader) if line.strip())


def paced_delay(
    first_event: datetime, event: datetime, wall_start: float, wall_now: float, speed: float
) -> float:
    """Seconds to sleep so that ``event`` is emitted ``(event - first_event) / speed`` after the start.

    ``speed`` 1 is the original pace, 10 ten times faster; 0 means as fast as possible.
    """
    if speed <= 0:
        return 0.0
    due = (event - first_event).total_seconds() / speed
    return max(0.0, due - (wall_now - wall_start))
