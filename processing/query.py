"""``lakehouse query`` and ``lakehouse snapshots``: look at the lakehouse with DuckDB, now or in the past.

Tables are attached as ``lake`` (``SELECT count(*) FROM lake.bronze.trades``). Time travel: with
``--table bronze.trades --as-of-snapshot ID`` (or ``--as-of TIME``) the name ``bronze.trades``
(without ``lake.``) is a view of that table as it was, so the same SQL reads the past.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click


def time_travel_view(table: str, snapshot_id: int | None, as_of: datetime | None) -> list[str]:
    """DuckDB statements that make ``table`` (``namespace.name``) a view of the lake table in the past."""
    namespace, _, name = table.partition(".")
    if not name:
        raise click.BadParameter(f"expected namespace.table, got {table!r}", param_hint="--table")
    if snapshot_id is not None:
        at = f"AT (VERSION => {int(snapshot_id)})"
    else:
        assert as_of is not None
        at = f"AT (TIMESTAMP => TIMESTAMPTZ '{as_of.astimezone(UTC).isoformat()}')"
    return [
        f'CREATE SCHEMA IF NOT EXISTS memory."{namespace}"',
        f'CREATE OR REPLACE VIEW memory."{namespace}"."{name}" AS SELECT * FROM lake."{namespace}"."{name}" {at}',
    ]


def resolve_as_of(settings, table: str, when: datetime) -> int:
    """The snapshot ``table`` had at ``when``: retained history or an hourly tag (docs/maintenance.md)."""
    from infrastructure.catalog import load_catalog
    from processing.maintenance import snapshot_as_of, time_travel_points

    points = time_travel_points(load_catalog(settings).load_table(table))
    found = snapshot_as_of(points, when)
    if found is None:
        oldest = datetime.fromtimestamp(points[0][1] / 1000, UTC).isoformat() if points else "none"
        raise click.BadParameter(
            f"{when.isoformat()} is before the oldest point time travel reaches ({oldest})",
            param_hint="--as-of",
        )
    return found


def parse_as_of(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {text!r}", param_hint="--as-of") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@click.command("query")
@click.argument("sql")
@click.option("--table", default=None, help="Table the time travel applies to, e.g. bronze.trades.")
@click.option("--as-of-snapshot", type=int, default=None, help="Read --table as of this snapshot id.")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    help="Read --table as of this ISO 8601 time (UTC unless it has an offset), e.g. 2026-11-22T10:00:00.",
)
@click.option("--max-rows", type=int, default=40, show_default=True)
def query_command(
    sql: str, table: str | None, as_of_snapshot: int | None, as_of: str | None, max_rows: int
) -> None:
    """Run SQL against the lakehouse with DuckDB and print the result as a table."""
    from infrastructure.settings import load_settings
    from processing.duckdb_engine import connect

    if (as_of_snapshot is not None or as_of is not None) and table is None:
        raise click.UsageError("--as-of-snapshot / --as-of need --table (e.g. --table bronze.trades)")
    if as_of_snapshot is not None and as_of is not None:
        raise click.UsageError("give either --as-of-snapshot or --as-of, not both")
    settings = load_settings()
    con = connect(settings)
    if table is not None and (as_of_snapshot is not None or as_of is not None):
        if as_of is not None:  # to a snapshot id here: DuckDB's own lookup misses the hourly tags
            as_of_snapshot = resolve_as_of(settings, table, parse_as_of(as_of))
        for statement in time_travel_view(table, as_of_snapshot, None):
            con.execute(statement)
    relation = con.sql(sql)
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
