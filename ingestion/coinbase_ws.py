"""Thin asyncio loop over the Coinbase Exchange WebSocket feed: connect, subscribe, read, reconnect.

- subscribes to ``matches`` and ``heartbeat`` right after connecting and expects the
  ``subscriptions`` reply within ``coinbase.subscribe_timeout_s`` (Coinbase closes sockets that do
  not subscribe within 5 s);
- heartbeat watchdog: no frame for ``coinbase.heartbeat_timeout_s`` -> the socket is presumed dead
  and is replaced (per-product heartbeats arrive every second, so silence means trouble);
- reconnects with exponential backoff and jitter (``venue_io.backoff_delay``), then resubscribes.

Every frame is handed, unparsed, with its receive time, to ``on_frame``; parsing lives elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from infrastructure.settings import CoinbaseSettings
from ingestion.metrics import IngestMetrics
from ingestion.venue_io import pause_before_reconnect

log = logging.getLogger(__name__)
CHANNELS = ("matches", "heartbeat")
SUBSCRIBED_MARKER = b'"subscriptions"'
FrameCallback = Callable[[bytes, datetime], None]


def subscribe_message(products: tuple[str, ...]) -> bytes:
    return orjson.dumps({"type": "subscribe", "product_ids": list(products), "channels": list(CHANNELS)})


class CoinbaseFeed:
    """Runs until ``stop`` is set; ``subscribed`` is set the first time a subscription is confirmed."""

    def __init__(
        self,
        coinbase: CoinbaseSettings,
        products: tuple[str, ...],
        on_frame: FrameCallback,
        metrics: IngestMetrics,
        stop: asyncio.Event,
    ) -> None:
        self.settings = coinbase
        self.products = products
        self.on_frame = on_frame
        self.metrics = metrics
        self.stop = stop
        self.subscribed = asyncio.Event()
        self.connections = 0
        self._session_subscribed = False

    async def run(self) -> None:
        attempt = 0
        while not self.stop.is_set():
            self._session_subscribed = False
            try:
                await self._session()
            except (OSError, TimeoutError, WebSocketException) as exc:
                log.warning("Coinbase feed: %s: %s", type(exc).__name__, exc)
            finally:
                self.metrics.connected.set(0)
            if self._session_subscribed:
                attempt = 0  # the last connection worked: start the backoff afresh
            if self.stop.is_set():
                break
            s = self.settings
            await pause_before_reconnect(
                attempt, s.backoff_initial_s, s.backoff_max_s, s.ws_url, self.metrics, self.stop
            )
            attempt += 1

    async def _session(self) -> None:
        """One connection, until it fails or ``stop`` is set."""
        s = self.settings
        async with connect(
            s.ws_url,
            open_timeout=s.subscribe_timeout_s,
            # oversized frames must reach the dead-letter topic, not kill the connection
            max_size=max(s.max_frame_bytes * 16, 1 << 20),
            close_timeout=1,
        ) as ws:
            self.connections += 1
            await ws.send(subscribe_message(self.products).decode())
            subscribed = False
            deadline = asyncio.get_running_loop().time() + s.subscribe_timeout_s
            stop_wait = asyncio.ensure_future(self.stop.wait())
            recv: asyncio.Future | None = None
            try:
                while not self.stop.is_set():
                    if subscribed:
                        timeout = s.heartbeat_timeout_s
                    else:
                        timeout = deadline - asyncio.get_running_loop().time()
                        if timeout <= 0:
                            raise TimeoutError(f"no subscriptions reply within {s.subscribe_timeout_s} s")
                    recv = asyncio.ensure_future(ws.recv(decode=False))
                    done, _ = await asyncio.wait(
                        {recv, stop_wait}, timeout=timeout, return_when="FIRST_COMPLETED"
                    )
                    if recv not in done:
                        recv.cancel()
                        with contextlib.suppress(asyncio.CancelledError, WebSocketException):
                            await recv
                        if self.stop.is_set():
                            break
                        raise TimeoutError(
                            f"no frame for {timeout:.1f} s"
                            if subscribed
                            else "no subscriptions reply in time"
                        )
                    raw = recv.result()
                    received_at = datetime.now(UTC)
                    if not subscribed and SUBSCRIBED_MARKER in raw[:64]:
                        subscribed = self._session_subscribed = True
                        self.subscribed.set()
                        self.metrics.connected.set(1)
                    self.on_frame(raw, received_at)
            finally:
                stop_wait.cancel()
                if recv is not None and not recv.done():
                    recv.cancel()
                    # retrieve its outcome so a close during cancellation is not logged as unhandled
                    recv.add_done_callback(lambda f: f.cancelled() or f.exception())
