"""``lakehouse silver``: refine one window of bronze into silver with the configured engine."""

from __future__ import annotations

import click


@click.command("silver")
@click.option("--start", required=True, help="Window start, ISO 8601 (UTC if no offset), inclusive.")
@click.option("--end", required=True, help="Window end, ISO 8601 (UTC if no offset), exclusive.")
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default=None,
    help="Processing engine; default LAKEHOUSE_ENGINE__PROCESSING.",
)
def silver(start: str, end: str, engine: str | None) -> None:
    """Refine bronze rows ingested in [START, END) into silver.trades; re-running is a no-op."""
    from infrastructure.job_metrics import run_and_push
    from infrastructure.settings import get_settings
    from processing.silver.run import SilverResult, run_silver
    from processing.silver.spark_submit import SparkUnavailable
    from processing.silver.sql import Window

    window, settings = Window.parse(start, end), get_settings()
    try:
        result = run_and_push(
            settings, "silver", lambda: run_silver(settings, window.start, window.end, engine=engine),  # type: ignore[arg-type]
            SilverResult.metric_counts, window.end,
        )  # fmt: skip
    except SparkUnavailable as exc:
        raise click.ClickException(f"the Spark engine needs the compose stack: {exc}") from None
    click.echo(result.summary())
