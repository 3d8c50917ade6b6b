"""``lakehouse silver`` / ``completeness`` / ``gold`` / ``quality`` / ``maintain``: the batch stages, one window or table
per run. Each calls its stage's job function (the one the Airflow task calls), which pushes the
run's metrics under the stage's job name."""

from __future__ import annotations

from datetime import datetime

import click

from orchestration.cli.params import UTC_TIME, window_option_pair
from quality.checks import DEFAULT_MAX_SILVER_LAG_S

START = click.option(
    "--start", type=UTC_TIME, required=True, help="Window start, ISO 8601 (no zone: UTC), inclusive."
)
END = click.option(
    "--end", type=UTC_TIME, required=True, help="Window end, ISO 8601 (no zone: UTC), exclusive."
)


@click.command("silver")
@START
@END
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default=None,
    help="Processing engine; default LAKEHOUSE_ENGINE__PROCESSING.",
)
def silver_command(start: datetime, end: datetime, engine: str | None) -> None:
    """Refine bronze rows ingested in [START, END) into silver.trades, and the reference prices into
    silver.reference_prices (as the hourly DAG does); re-running is a no-op."""
    from infrastructure.settings import get_settings
    from infrastructure.times import Window
    from processing.silver.reference import reference_silver_job
    from processing.silver.run import silver_job
    from processing.silver.spark_submit import SparkUnavailable

    window_option_pair(start, end)
    settings, window = get_settings(), Window(start, end)
    try:
        result = silver_job(settings, window, engine=engine)  # type: ignore[arg-type]
    except SparkUnavailable as exc:
        raise click.ClickException(f"the Spark engine needs the compose stack: {exc}") from None
    click.echo(result.summary())
    for line in result.steps():
        click.echo(line)
    # reference prices are a few rows an hour: DuckDB in either stack, as the DAG's silver_reference
    click.echo(reference_silver_job(settings, window).summary())


@click.command("completeness")
@click.option("--start", type=UTC_TIME, required=True, help="Window start (exchange time), ISO 8601, UTC.")
@click.option("--end", type=UTC_TIME, required=True, help="Window end (exchange time, exclusive), ISO 8601.")
def completeness_command(start: datetime, end: datetime) -> None:
    """Find trade-id holes in silver for [START, END), close the filled ones; print backfills due."""
    import json

    from infrastructure.settings import get_settings
    from infrastructure.times import Window
    from processing.silver.completeness_run import completeness_job

    window_option_pair(start, end)
    result = completeness_job(get_settings(), Window(start, end))
    click.echo(result.summary())
    for request in result.backfills:
        click.echo(json.dumps(request["conf"]))


@click.command("gold")
@click.option("--full-refresh", is_flag=True, help="Rebuild the incremental models from all of silver.")
@click.option("--select", default=None, help="dbt node selection, e.g. 'ohlcv_1m+'.")
@click.option(
    "--lookback-hours",
    type=int,
    default=None,
    help="Late-data lookback of the 1m models (default: the project's var, 3).",
)
@click.option("-v", "--verbose", is_flag=True, help="Stream dbt's lines (one START / OK per model and test).")
def gold_command(full_refresh: bool, select: str | None, lookback_hours: int | None, verbose: bool) -> None:
    """Build gold (dbt models + tests) for the current stack (settings: engine.query)."""
    from infrastructure.settings import get_settings
    from processing.gold import gold_job

    result = gold_job(
        get_settings(), full_refresh=full_refresh, select=select, lookback_hours=lookback_hours,
        on_line=click.echo if verbose else None,
    )  # fmt: skip
    click.echo(result.summary())
    if not result.success:
        raise SystemExit(1)


@click.command("quality")
@START
@END
@click.option(
    "--max-silver-lag", type=int, default=DEFAULT_MAX_SILVER_LAG_S, show_default=True, help="seconds"
)
def quality_command(start: datetime, end: datetime, max_silver_lag: int) -> None:
    """Check silver and gold for a window with Great Expectations; exit 1 if a suite fails.

    The run (success, duration, suites, window) and its per-suite gauges are pushed as job
    ``quality``, as the hourly DAG's quality task does."""
    from infrastructure.settings import get_settings
    from infrastructure.times import Window
    from quality.checks import quality_job

    window_option_pair(start, end)
    result = quality_job(get_settings(), Window(start, end), max_silver_lag_s=max_silver_lag)
    click.echo(result.summary())
    if not result.success:
        raise SystemExit(1)


@click.command("maintain")
@click.argument("table")
def maintain_command(table: str) -> None:
    """The hourly maintenance of TABLE (e.g. bronze.trades) for the hour that closed last: tag it,
    compact its files, expire snapshots, remove orphans, as the maintenance DAG does; pushed as job
    maintenance_<namespace>_<table>."""
    from datetime import UTC
    from datetime import datetime as clock

    from infrastructure.settings import get_settings
    from processing.maintenance import run_hourly

    click.echo(run_hourly(get_settings(), table, clock.now(UTC)))
