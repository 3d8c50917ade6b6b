"""SQL over the lakehouse with DuckDB, now or in the past (what ``lakehouse query`` runs).

Tables are attached as ``lake``. Time travel makes ``namespace.table`` (without ``lake.``) a view of
that table as of a snapshot id, a time, or a branch or tag, so the same SQL reads the past.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from infrastructure.settings import Settings


def time_travel_view(table: str, snapshot_id: int | None, as_of: datetime | None) -> list[str]:
    """DuckDB statements that make ``table`` (``namespace.name``) a view of the lake table in the past."""
    namespace, _, name = table.partition(".")
    if not name:
        raise ValueError(f"expected namespace.table, got {table!r}")
    if snapshot_id is not None:
        at = f"AT (VERSION => {int(snapshot_id)})"
    else:
        assert as_of is not None
        at = f"AT (TIMESTAMP => TIMESTAMPTZ '{as_of.astimezone(UTC).isoformat()}')"
    return [
        f'CREATE SCHEMA IF NOT EXISTS memory."{namespace}"',
        f'CREATE OR REPLACE VIEW memory."{namespace}"."{name}" AS SELECT * FROM lake."{namespace}"."{name}" {at}',
    ]


class TimeTravelOutOfReach(ValueError):
    """A time before the oldest point the table's retention keeps."""


def resolve_as_of(settings: Settings, table: str, when: datetime) -> int:
    """The snapshot ``table`` had at ``when``: retained history or an hourly tag (docs/maintenance.md).
    DuckDB's own timestamp lookup reads the snapshot log, which expiry trims, so it misses the tags."""
    from infrastructure.catalog import load_catalog
    from processing.maintenance import snapshot_as_of, time_travel_points

    points = time_travel_points(load_catalog(settings).load_table(table))
    found = snapshot_as_of(points, when)
    if found is None:
        oldest = datetime.fromtimestamp(points[0][1] / 1000, UTC).isoformat() if points else "none"
        raise TimeTravelOutOfReach(
            f"{when.isoformat()} is before the oldest point time travel reaches ({oldest})"
        )
    return found


class UnknownRef(ValueError):
    """A branch or tag name the table does not have."""


def resolve_ref(settings: Settings, table: str, ref: str) -> int:
    """The snapshot a branch or tag of ``table`` points at (e.g. an hourly tag ``hour-2026-12-01T10``)."""
    from infrastructure.catalog import load_catalog

    refs = load_catalog(settings).load_table(table).metadata.refs
    if ref not in refs:
        known = ", ".join(sorted(refs)) or "none"
        raise UnknownRef(f"{table} has no branch or tag {ref!r} (it has: {known})")
    return refs[ref].snapshot_id


def run_query(
    settings: Settings,
    sql: str,
    table: str | None = None,
    snapshot_id: int | None = None,
    as_of: datetime | None = None,
    ref: str | None = None,
) -> duckdb.DuckDBPyRelation | None:
    """Run ``sql`` on a fresh connection, with ``table`` read as of ``snapshot_id``, ``as_of`` or the
    branch or tag ``ref`` if given."""
    from processing.duckdb_engine import connect

    con = connect(settings)
    if ref is not None:
        assert table is not None, "a ref needs its table"
        snapshot_id = resolve_ref(settings, table, ref)
    if table is not None and (snapshot_id is not None or as_of is not None):
        if as_of is not None:
            snapshot_id, as_of = resolve_as_of(settings, table, as_of), None
        for statement in time_travel_view(table, snapshot_id, as_of):
            con.execute(statement)
    return con.sql(sql)
