"""``lakehouse migrate`` and ``lakehouse inspect``: evolve live tables to their contracts, and read
a table's Iceberg metadata (files, history, snapshots, refs, manifests, partitions)."""

from __future__ import annotations

import click

from processing.inspect import VIEWS


@click.command("migrate")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
def migrate_command(dry_run: bool) -> None:
    """Bring live tables to their contracts (infrastructure/tables.py): add optional columns, widen
    types, set docs, add partition fields, in place. An incompatible difference is refused with the
    column and why, and no table is changed."""
    from infrastructure.catalog import load_catalog
    from infrastructure.migrations import IncompatibleChange, migrate
    from infrastructure.settings import load_settings

    try:
        result = migrate(load_catalog(load_settings()), dry_run=dry_run)
    except IncompatibleChange as exc:
        raise click.ClickException(str(exc)) from None
    echo_migration(result.plans, applied=result.applied)


def echo_migration(plans, applied: bool) -> None:
    """One line per table and change (``init`` prints the same)."""
    verb = "applied" if applied else "plan"
    for plan in plans:
        steps = plan.steps()
        if not steps:
            click.echo(f"{plan.identifier}: up to date")
        for step in steps:
            click.echo(f"{plan.identifier}: {verb}: {step}")


@click.command("inspect")
@click.argument("table")
@click.argument("view", type=click.Choice(VIEWS))
@click.option(
    "--snapshot", "snapshot_id", type=int, default=None, help="files / partitions as of this snapshot id."
)
@click.option("--max-rows", type=int, default=40, show_default=True)
def inspect_command(table: str, view: str, snapshot_id: int | None, max_rows: int) -> None:
    """Show TABLE's Iceberg metadata VIEW (Trino's "trades$files" etc.): data files with their
    partition spec, commit history, snapshots, branches and tags, manifests, partitions."""
    import duckdb

    from infrastructure.catalog import load_catalog
    from infrastructure.settings import load_settings
    from processing.inspect import inspect_table

    if not table.partition(".")[2]:
        raise click.BadParameter(f"expected namespace.table, got {table!r}", param_hint="TABLE")
    loaded = load_catalog(load_settings()).load_table(table)
    try:
        rows = inspect_table(loaded, view, snapshot_id)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--snapshot") from None
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.from_arrow(rows).show(max_rows=max_rows, max_width=200)
    click.echo(f"{rows.num_rows} rows")
