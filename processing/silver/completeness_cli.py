"""``lakehouse completeness``: check silver's trade ids for a window and record holes in silver.trade_gaps."""

from __future__ import annotations

import click


@click.command("completeness")
@click.option("--start", required=True, help="Window start (exchange time), ISO 8601, UTC if no offset.")
@click.option("--end", required=True, help="Window end (exclusive), ISO 8601, UTC if no offset.")
def completeness(start: str, end: str) -> None:
    """Find trade-id holes in silver for [START, END), close filled ones; print the backfills due."""
    import json

    from infrastructure.job_metrics import run_and_push
    from infrastructure.settings import get_settings
    from processing.silver.completeness_run import CompletenessResult, run_completeness
    from processing.silver.sql import Window

    window, settings = Window.parse(start, end), get_settings()
    result = run_and_push(
        settings, "completeness", lambda: run_completeness(settings, window.start, window.end),
        CompletenessResult.metric_counts, window.end,
    )  # fmt: skip
    click.echo(result.summary())
    for request in result.backfills:
        click.echo(json.dumps(request["conf"]))
