"""Scheduling defaults shared by every DAG (kept light: DAG files import it at parse time)."""

from __future__ import annotations

from datetime import timedelta

from infrastructure.airflow_stack import airflow_home, stack_start_date
from infrastructure.settings import get_settings

# When the hourly schedule begins; catch-up processes every hour from here: the hour the stack was
# first started (both stacks), unless LAKEHOUSE_ORCHESTRATION__START_DATE says otherwise.
START_DATE = stack_start_date(get_settings(), airflow_home(get_settings()))

DEFAULT_ARGS = {
    "owner": "lakehouse",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}
