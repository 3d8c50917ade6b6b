"""``lakehouse query`` and ``lakehouse snapshots``: look at the lakehouse with DuckDB, now or in the past.

Tables are attached as ``lake`` (``SELECT count(*) FROM lake.bronze.trades``). Time travel: with
``--table bronze.trades --as-of-snapshot ID`` (or ``--as-of TIME``) the name ``bronze.trades``
(without ``lake.``) is a view of that table as it was, so the same SQL reads the past.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from orchestration.cli.params import UTC_TIME


@click.command("query")
@click.argument("sql")
@click.option("--table", default=None, help="Table the time travel applies to, e.g. bronze.trades.")
@click.option("--as-of-snapshot", type=int, default=None, help="Read --table as of this snapshot id.")
@click.option(
    "--as-of",
    "as_of",
    type=UTC_TIME,
    default=None,
    help="Read --table as of this ISO 8601 time (UTC unless it has an offset), e.g. 2026-11-22T10:00:00.",
)
@click.option("--max-rows", type=int, default=40, show_default=True)
def query_command(
    sql: str, table: str | None, as_of_snapshot: int | None, as_of: datetime | None, max_rows: int
) -> None:
    """Run SQL against the lakehouse with DuckDB and print the result as a table."""
    from infrastructure.settings import load_settings
    from processing.query import run_query

    if (as_of_snapshot is not None or as_of is not None) and table is None:
        raise click.UsageError("--as-of-snapshot / --as-of need --table (e.g. --table bronze.trades)")
    if as_of_snapshot is not None and as_of is not None:
        raise click.UsageError("give either --as-of-snapshot or --as-of, not both")
    if table is not None and not table.partition(".")[2]:
        raise click.BadParameter(f"expected namespace.table, got {table!r}", param_hint="--table")
    relation = run_query(load_settings(), sql, table, as_of_snapshot, as_of)
    if relation is not None:
        relation.show(max_rows=max_rows, max_width=200)


@click.command("snapshots")
@click.argument("table")
def snapshots_command(table: str) -> None:
    """List TABLE's snapshots: id, time, operation and summary (bronze: the Kafka offsets covered)."""
    from infrastructure.catalog import load_catalog
    from infrastructure.settings import load_settings

    loaded = load_catalog(load_settings()).load_table(table)
    current = loaded.current_snapshot()
    for snapshot in loaded.snapshots():
        when = datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds")
        summary = snapshot.summary
        operation = summary.operation.value if summary else "?"
        props = summary.additional_properties if summary else {}
        mark = "*" if current is not None and snapshot.snapshot_id == current.snapshot_id else " "
        click.echo(f"{mark} {snapshot.snapshot_id}  {when}  {operation}")
        for key in sorted(props):
            click.echo(f"      {key} = {props[key]}")
