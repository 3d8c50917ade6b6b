"""``lakehouse trigger``: start a DAG run in the embedded Airflow and, if asked, follow it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from orchestration.cli.params import UTC_TIME


class HourParam(click.ParamType):
    """``current`` (this hour) or an ISO 8601 time (no zone: UTC)."""

    name = "HOUR"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if value == "current":
            return datetime.now(UTC)
        return UTC_TIME.convert(value, param, ctx)


class JsonObject(click.ParamType):
    name = "JSON"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> dict:
        if isinstance(value, dict):
            return value
        try:
            parsed = json.loads(str(value))
        except json.JSONDecodeError as exc:
            self.fail(f"not JSON: {exc}", param, ctx)
        if not isinstance(parsed, dict):
            self.fail(f"expected a JSON object, got {type(parsed).__name__}", param, ctx)
        return parsed


@click.command("trigger")
@click.argument("dag_id")
@click.option(
    "--conf",
    type=JsonObject(),
    default="{}",
    help="Run conf / params as a JSON object, e.g. for crypto_backfill.",
)
@click.option(
    "--hour",
    type=HourParam(),
    default=None,
    help="crypto_hourly: the hour the run owns (ISO 8601, UTC; 'current' for this hour). "
    "Default: Airflow's inference, the last complete hour.",
)
@click.option("--wait", "wait_s", type=float, default=None, help="Wait up to this many seconds for the run.")
def trigger_command(dag_id: str, conf: dict, hour: datetime | None, wait_s: float | None) -> None:
    """Trigger a DAG run through Airflow's REST API and print its run id.

    An Airflow that is down or answers with an error is reported by the CLI's error boundary, in one
    line naming its URL (``orchestration/cli/errors.py``)."""
    from infrastructure.settings import load_settings
    from orchestration.api import AirflowClient

    client = AirflowClient.login(load_settings())
    run_id = client.trigger(dag_id, conf, hour)
    click.echo(run_id)
    if wait_s is not None:
        state = client.wait(dag_id, run_id, wait_s, lambda t: click.echo(f"  tasks: {t}", err=True))
        click.echo(f"{run_id}: {state}", err=True)
        if state != "success":
            raise SystemExit(1)
