"""How long-running processes ride out an outage (storage, catalog, broker): retry without end,
capped exponential backoff, one concise line per retry (the traceback only with ``settings.debug``),
until the caller's ``should_stop`` says the process is ending. Built on ``tenacity``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import tenacity

BACKOFF_INITIAL_S = 0.5
ANY_ERROR = tenacity.retry_if_exception_type(Exception)


def one_line(exc: BaseException | None) -> str:
    """An exception as one short line (pyiceberg and librdkafka errors can span many)."""
    if exc is None:
        return "?"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def until_stopped(
    what: str,
    log: logging.Logger,
    should_stop: Callable[[], bool],
    max_wait_s: float,
    debug: bool = False,
    retry: tenacity.retry_base = ANY_ERROR,
    sleep: Callable[[float], object] | None = None,
) -> tenacity.Retrying:
    """A ``tenacity.Retrying`` that retries ``what`` until ``should_stop()``, then re-raises the last
    error. ``sleep``: a wait that a stop can cut short (e.g. ``threading.Event.wait``)."""

    def line(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (attempt %d, retrying in %.1f s): %s", what, state.attempt_number, wait,
                    one_line(exc), exc_info=exc if debug else None)  # fmt: skip

    extra = {} if sleep is None else {"sleep": sleep}
    return tenacity.Retrying(
        retry=retry,
        wait=tenacity.wait_exponential(multiplier=BACKOFF_INITIAL_S, max=max_wait_s),
        stop=lambda _state: should_stop(),
        before_sleep=line,
        reraise=True,
        **extra,
    )
