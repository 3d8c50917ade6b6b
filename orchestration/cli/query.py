"""``lakehouse query`` and ``lakehouse snapshots``: look at the lakehouse with DuckDB, now or in the past.

Tables are attached as ``lake`` (``SELECT count(*) FROM lake.bronze.trades``). Time travel: with
``--table bronze.trades --as-of-snapshot ID`` (or ``--as-of TIME``, or ``--ref`` a branch or tag) the
name ``bronze.trades`` (without ``lake.``) is a view of that table as it was, so the same SQL reads
the past.
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
@click.option(
    "--ref", default=None, help="Read --table at this branch or tag, e.g. an hourly tag hour-2026-12-01T10."
)
@click.option("--max-rows", type=int, default=40, show_default=True, help="table format: rows shown")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="csv / json: every row, decimals and times as exact text (json: one array of objects).",
)
def query_command(
    sql: str,
    table: str | None,
    as_of_snapshot: int | None,
    as_of: datetime | None,
    ref: str | None,
    max_rows: int,
    output: str,
) -> None:
    """Run SQL against the lakehouse with DuckDB and print the result (a table, CSV or JSON)."""
    from infrastructure.settings import load_settings
    from processing.query import TimeTravelOutOfReach, UnknownRef, run_query

    points = [p for p in (as_of_snapshot, as_of, ref) if p is not None]
    if points and table is None:
        raise click.UsageError("--as-of-snapshot / --as-of / --ref need --table (e.g. --table bronze.trades)")
    if len(points) > 1:
        raise click.UsageError("give one of --as-of-snapshot, --as-of and --ref")
    if table is not None and not table.partition(".")[2]:
        raise click.BadParameter(f"expected namespace.table, got {table!r}", param_hint="--table")
    try:
        relation = run_query(load_settings(), sql, table, as_of_snapshot, as_of, ref)
    except TimeTravelOutOfReach as exc:
        raise click.BadParameter(str(exc), param_hint="--as-of") from None
    except UnknownRef as exc:
        raise click.BadParameter(str(exc), param_hint="--ref") from None
    if relation is None:
        return
    if output == "table":
        relation.show(max_rows=max_rows, max_width=200)
        return
    columns, rows = relation.columns, relation.fetchall()
    if output == "csv":
        import csv
        import io

        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_text(v) for v in row] for row in rows])
        click.echo(text.getvalue(), nl=False)
    else:
        import json

        click.echo(json.dumps([dict(zip(columns, map(_json, row), strict=True)) for row in rows], indent=1))


def _text(value: object) -> object:
    """Decimals as written (no float on the way), times in ISO 8601, NULL as empty."""
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, datetime) else value


def _json(value: object) -> object:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return str(value)  # exact: JSON numbers would be read back as floats
    return value.isoformat() if isinstance(value, datetime) else value


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
