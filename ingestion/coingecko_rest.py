"""CoinGecko REST: the ``/simple/price`` GET, through the venues' shared loop (``venue_io.RestClient``).

What docs.coingecko.com says and this client does:
- keyless public API: rate limited per IP (shared with everyone behind it); the Demo plan allows
  100 calls/min with the ``x-cg-demo-api-key`` header, a Pro key goes in ``x-cg-pro-api-key`` on
  ``pro-api.coingecko.com`` (``coingecko.api_key`` / ``api_key_header`` / ``base_url``). The key
  goes in a header, never in the query string (it would end up in logs);
- every request first takes a token of a :class:`TokenBucket` at ``coingecko.rate_limit_per_minute``;
- ``429 Too Many Requests``: wait ``Retry-After`` seconds (1 s if absent) and ask again, unless the
  wait exceeds ``coingecko.max_wait_s`` (then the poll fails with a one-line error; the next poll
  asks again); other 4xx (400 bad parameters, 401/10002 missing or wrong key) fail at once with the
  API's message; 5xx and network errors are retried with capped backoff.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import aiohttp
import orjson

from infrastructure.settings import CoinGeckoSettings
from ingestion.venue_io import RETRY, RestClient, RestError, TokenBucket, retry_after_wait

log = logging.getLogger(__name__)
SIMPLE_PRICE = "/simple/price"


def session_headers(coingecko: CoinGeckoSettings) -> dict[str, str]:
    """Headers every request carries: the API key when one is configured."""
    if coingecko.api_key is None:
        return {}
    return {coingecko.api_key_header: coingecko.api_key.get_secret_value()}


def simple_price_params(coingecko: CoinGeckoSettings) -> dict[str, str]:
    return {
        "ids": ",".join(coingecko.ids),
        "vs_currencies": ",".join(coingecko.vs_currencies),
        "include_last_updated_at": "true",
        "precision": "full",  # every digit the API has, not its 2-decimal default rounding
    }


class CoinGeckoRest(RestClient):
    """Open the ``session`` with :func:`session_headers` (aiohttp adds them to every request)."""

    def __init__(self, coingecko: CoinGeckoSettings, session: aiohttp.ClientSession) -> None:
        self.settings = coingecko
        self.url = coingecko.base_url.rstrip("/") + SIMPLE_PRICE
        self.params = simple_price_params(coingecko)
        self.bucket = TokenBucket(coingecko.rate_limit_per_minute / 60.0)
        self.session = session
        self.requests = 0
        self.rate_limited = 0  # 429 answers seen

    async def simple_price(self) -> tuple[bytes, datetime]:
        """The answer's body (parsed by ``coingecko_parser``) and when it arrived."""

        def answer(status: int, headers, body: bytes) -> object:
            if status == 200:
                return body
            if status == 429:
                self.rate_limited += 1
                return retry_after_wait(
                    self.url, status, headers, self.settings.max_wait_s, "coingecko.max_wait_s"
                )
            if status < 500:
                raise RestError(f"{self.url}: HTTP {status}: {error_message(body)}")
            return RETRY

        body = await self.get_answer(self.url, self.params, answer)
        assert isinstance(body, bytes)
        return body, datetime.now(UTC)


def error_message(body: bytes) -> str:
    """CoinGecko's error bodies as one line: ``{"status": {"error_code": 10002, "error_message": ...}}``
    (401/429), ``{"error": "..."}`` (400/404), else the body's start."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return repr(body[:200])
    if isinstance(obj, dict):
        status = obj.get("status")
        if isinstance(status, dict) and "error_message" in status:
            return f"{status['error_message']} (code {status.get('error_code')})"
        if isinstance(obj.get("error"), str):
            return obj["error"]
    return repr(body[:200])
