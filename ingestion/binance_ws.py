"""Thin asyncio loop over Binance's combined market stream: connect, read, rotate, reconnect.

The venue's rules (github.com/binance/binance-spot-api-docs, web-socket-streams.md, read 2026-12-01):

- one connection for every configured symbol: ``/stream?streams=btcusdt@trade/ethusdt@trade``,
  so nothing is sent after connecting (each JSON message a client sends counts against the
  5-incoming-messages-per-second limit); at most 1024 streams per connection (the settings refuse
  more);
- keep-alive: the server pings every 20 s and disconnects a client that has not answered within a
  minute; ``websockets`` answers every ping with a pong carrying a copy of its payload, as required.
  Our own ping every ``binance.ping_interval_s`` detects a dead socket that would otherwise look
  like a quiet market (Binance has no heartbeat frames);
- a connection lives at most 24 hours. At ``connection_lifetime_s - rotate_margin_s`` (or at once
  on a ``serverShutdown`` event) the next connection is opened while the old one still delivers;
  for ``handover_s`` both are read, the new one's frames held back (bounded by
  :data:`MAX_HANDOVER_FRAMES`); then the old one is closed and the held frames are passed on. Every
  trade is thus delivered by one connection or the other, in order, and the ones delivered by both
  are dropped as duplicates by trade id in the pipeline: no gap, and no false gap from interleaving;
- a handshake refused with ``429`` / ``418`` and ``Retry-After`` (the REST rule; the streams
  document no status of their own) waits that long before the next attempt;
- a broken connection is replaced with exponential backoff and jitter (the shared
  :func:`~ingestion.venue_io.backoff_delay`), well below the 300 connection attempts per
  5 minutes per IP the venue allows.

Every frame is handed, unparsed, with its receive time, to ``on_frame``; parsing lives elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from infrastructure.settings import BinanceSettings
from ingestion.binance_parser import SERVER_SHUTDOWN, stream_names
from ingestion.metrics import IngestMetrics
from ingestion.venue_io import pause_before_reconnect

log = logging.getLogger(__name__)
FrameCallback = Callable[[bytes, datetime], None]
SHUTDOWN_MARKER = f'"{SERVER_SHUTDOWN}"'.encode()
MAX_HANDOVER_FRAMES = 200_000  # frames held back during a handover; more ends the overlap early


def stream_url(ws_url: str, symbols: tuple[str, ...], channel: str) -> str:
    """``wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade``."""
    return f"{ws_url.rstrip('/')}/stream?streams={'/'.join(stream_names(symbols, channel))}"  # type: ignore[arg-type]


def refused_wait(exc: InvalidStatus) -> float | None:
    """Seconds a refused handshake asks to wait: its ``Retry-After`` on a 429 or 418, else None."""
    response = exc.response
    if response.status_code not in (418, 429):
        return None
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class _Rotate(Exception):
    """The server announced its shutdown: the current connection should be replaced now."""


class HandoverFailed(WebSocketException):
    """The next connection could not take over; the feed reconnects (and backfills the gap)."""


class BinanceFeed:
    """Runs until ``stop`` is set; ``subscribed`` is set once the first connection is open."""

    def __init__(
        self,
        binance: BinanceSettings,
        symbols: tuple[str, ...],
        on_frame: FrameCallback,
        metrics: IngestMetrics,
        stop: asyncio.Event,
    ) -> None:
        self.settings = binance
        self.url = stream_url(binance.ws_url, symbols, binance.channel)
        self.on_frame = on_frame
        self.metrics = metrics
        self.stop = stop
        self.subscribed = asyncio.Event()
        self.connections = 0
        self.rotations = 0
        self.frames = 0

    async def run(self) -> None:
        attempt = 0
        ws: ClientConnection | None = None
        while not self.stop.is_set():
            frames = self.frames
            try:
                if ws is None:
                    ws = await self._open()
                ws = await self._serve(ws)  # the next connection after a handover, None once stopped
                attempt = 0
                continue
            except InvalidStatus as exc:
                wait = refused_wait(exc)
                log.warning("Binance refused the connection: %s", exc)
                if wait is not None:
                    # 429 / 418 with Retry-After: the venue says how long; retrying sooner risks a ban
                    self.metrics.reconnects.inc()
                    log.warning("waiting the %.0f s Retry-After before connecting again", wait)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), wait)
                    continue
            except (OSError, TimeoutError, WebSocketException) as exc:
                log.warning("Binance feed: %s: %s", type(exc).__name__, exc)
            if ws is not None:
                await _close(ws)
                ws = None
            self.metrics.connected.set(0)
            if self.frames > frames:
                attempt = 0  # the last connection worked: start the backoff afresh
            if self.stop.is_set():
                break
            s = self.settings
            await pause_before_reconnect(
                attempt, s.backoff_initial_s, s.backoff_max_s, s.ws_url, self.metrics, self.stop
            )
            attempt += 1
        if ws is not None:
            await _close(ws)
        self.metrics.connected.set(0)

    async def _open(self) -> ClientConnection:
        s = self.settings
        ws = await connect(
            self.url,
            open_timeout=s.open_timeout_s,
            ping_interval=s.ping_interval_s,
            ping_timeout=s.ping_timeout_s,
            # oversized frames must reach the dead-letter topic, not kill the connection
            max_size=max(s.max_frame_bytes * 16, 1 << 20),
            close_timeout=1,
        )
        self.connections += 1
        self.subscribed.set()
        self.metrics.connected.set(1)
        log.info("connected to %s (connection %d)", self.settings.ws_url, self.connections)
        return ws

    async def _serve(self, ws: ClientConnection) -> ClientConnection | None:
        """Read ``ws`` until stopped (None) or until it is due for rotation: then open the next one,
        hand over, and return it. A failure of ``ws`` itself raises."""
        loop = asyncio.get_running_loop()
        rotate_at = loop.time() + self.settings.rotate_after_s()
        try:
            await self._pump(ws, self.on_frame, rotate_at, rotate_on_shutdown=True)
        except _Rotate:
            log.info("Binance announced a server shutdown: moving to a new connection now")
        if self.stop.is_set():
            await _close(ws)
            return None
        return await self._handover(ws)

    async def _handover(self, old: ClientConnection) -> ClientConnection:
        """Open the next connection while ``old`` still delivers; return it once ``old`` is closed."""
        try:
            new = await self._open()
        except (OSError, TimeoutError, WebSocketException) as exc:
            log.warning(
                "could not open the next Binance connection (%s); the old one stays until it ends", exc
            )
            await self._pump(old, self.on_frame, None, rotate_on_shutdown=False)
            raise HandoverFailed(f"the next connection could not be opened: {exc}") from exc
        held: list[tuple[bytes, datetime]] = []
        done = asyncio.Event()

        def hold(raw: bytes, received: datetime) -> None:
            held.append((raw, received))
            if len(held) >= MAX_HANDOVER_FRAMES:
                done.set()

        until = asyncio.get_running_loop().time() + self.settings.handover_s
        old_side = asyncio.ensure_future(self._pump(old, self.on_frame, until, False, done))
        new_side = asyncio.ensure_future(self._pump(new, hold, until, False, done))
        results = await asyncio.gather(old_side, new_side, return_exceptions=True)
        await _close(old)
        if isinstance(results[1], BaseException):
            await _close(new)
            raise HandoverFailed(f"the next connection failed during the handover: {results[1]}")
        if isinstance(results[0], BaseException) and not isinstance(results[0], ConnectionClosed):
            log.warning("the old Binance connection failed during the handover: %s", results[0])
        self.metrics.handover_held.set(len(held))
        for raw, received in held:
            self.on_frame(raw, received)
        self.rotations += 1
        self.metrics.rotations.inc()
        self.metrics.connected.set(1)
        log.info("handed over to connection %d (%d frames held back meanwhile)", self.connections, len(held))
        return new

    async def _pump(
        self,
        ws: ClientConnection,
        sink: FrameCallback,
        until: float | None,
        rotate_on_shutdown: bool,
        done: asyncio.Event | None = None,
    ) -> None:
        """Pass ``ws``'s frames to ``sink`` until ``until`` (loop time), ``stop`` or ``done``."""
        loop = asyncio.get_running_loop()
        waits = [asyncio.ensure_future(self.stop.wait())]
        if done is not None:
            waits.append(asyncio.ensure_future(done.wait()))
        recv: asyncio.Future | None = None
        try:
            while not self.stop.is_set() and (done is None or not done.is_set()):
                timeout = None if until is None else until - loop.time()
                if timeout is not None and timeout <= 0:
                    return
                if recv is None:
                    recv = asyncio.ensure_future(ws.recv(decode=False))
                finished, _ = await asyncio.wait(
                    {recv, *waits}, timeout=timeout, return_when="FIRST_COMPLETED"
                )
                if recv not in finished:
                    continue  # stopped, done or due: the loop condition decides
                raw = recv.result()
                recv = None
                received = datetime.now(UTC)
                if isinstance(raw, str):
                    raw = raw.encode()
                self.frames += 1
                sink(raw, received)
                if rotate_on_shutdown and SHUTDOWN_MARKER in raw[:80]:
                    raise _Rotate
        finally:
            for wait in waits:
                wait.cancel()
            if recv is not None and not recv.done():
                recv.cancel()
                # retrieve its outcome so a close during cancellation is not logged as unhandled
                recv.add_done_callback(lambda f: f.cancelled() or f.exception())


async def _close(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        await ws.close()
