"""Scheduling defaults shared by every DAG (kept light: DAG files import it at parse time)."""

from __future__ import annotations

from datetime import timedelta

from infrastructure.settings import get_settings

# When the hourly schedule begins; catch-up processes every hour from here. The embedded stack sets
# it to the hour the stack was first started, the compose stack from .env.
START_DATE = get_settings().orchestration.start_date

DEFAULT_ARGS = {
    "owner": "lakehouse",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}
