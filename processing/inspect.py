"""A table's Iceberg metadata as small readable tables: what ``lakehouse inspect`` prints.

The same questions Trino answers with ``"trades$files"``, ``$history``, ``$snapshots``, ``$refs``,
``$manifests`` and ``$partitions`` (docs/iceberg.md), answered from pyiceberg's inspect API so
they work in both stacks without a Trino. Each view keeps the columns a person reads (paths are
shortened to the table's location, a snapshot summary to its row and file totals); the full
metadata stays one ``table.inspect.<name>()`` away.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from pyiceberg.table import Table

# the columns each view prints, in order
COLUMNS = {
    "files": ["file", "spec_id", "partition", "records", "bytes"],
    "history": ["made_current_at", "snapshot_id", "parent_id", "is_current_ancestor"],
    "snapshots": [
        "committed_at",
        "snapshot_id",
        "parent_id",
        "operation",
        "total_records",
        "total_data_files",
    ],
    "refs": ["name", "type", "snapshot_id", "max_reference_age_in_ms"],
    "manifests": ["manifest", "spec_id", "bytes", "data_files", "partition_ranges"],
    "partitions": ["partition", "spec_id", "records", "files"],
}
VIEWS = tuple(COLUMNS)


def _short(table: Table, path: str) -> str:
    prefix = table.location().rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def _summary(summary: list[tuple[str, str]] | dict | None, key: str) -> int | None:
    items = dict(summary or {})
    return int(items[key]) if key in items else None


def _partition(table: Table, spec_id: int, values: dict | None) -> str:
    """A file's partition as its own spec writes it (``event_day=2026-01-01, ingest_hour=2026-01-01-11``):
    the metadata table's struct is the union of every spec's fields, NULL where a spec lacks one."""
    spec, values = table.specs()[spec_id], values or {}
    schema = table.schema()
    parts = []
    for field in spec.fields:
        value = values.get(field.name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = field.transform.to_human_string(schema.find_type(field.source_id), value)
        parts.append(f"{field.name}={value}")
    return ", ".join(parts)


def files(table: Table, snapshot_id: int | None) -> pa.Table:
    raw = table.inspect.files(snapshot_id)
    rows = [
        {
            "file": _short(table, r["file_path"]),
            "spec_id": r["spec_id"],
            "partition": _partition(table, r["spec_id"], r["partition"]),
            "records": r["record_count"],
            "bytes": r["file_size_in_bytes"],
        }
        for r in raw.to_pylist()
    ]
    return _table(rows, "files")


def history(table: Table, _snapshot_id: int | None) -> pa.Table:
    raw = table.inspect.history().to_pylist()
    return _table(raw, "history")


def snapshots(table: Table, _snapshot_id: int | None) -> pa.Table:
    rows = [
        {
            "committed_at": r["committed_at"],
            "snapshot_id": r["snapshot_id"],
            "parent_id": r["parent_id"],
            "operation": r["operation"],
            "total_records": _summary(r["summary"], "total-records"),
            "total_data_files": _summary(r["summary"], "total-data-files"),
        }
        for r in table.inspect.snapshots().to_pylist()
    ]
    return _table(rows, "snapshots")


def refs(table: Table, _snapshot_id: int | None) -> pa.Table:
    raw = table.inspect.refs().to_pylist()
    return _table(raw, "refs")


def manifests(table: Table, _snapshot_id: int | None) -> pa.Table:
    rows = [
        {
            "manifest": _short(table, r["path"]),
            "spec_id": r["partition_spec_id"],
            "bytes": r["length"],
            "data_files": r["added_data_files_count"] + r["existing_data_files_count"],
            "partition_ranges": ", ".join(
                f"{s['lower_bound']}..{s['upper_bound']}" for s in r["partition_summaries"] or []
            ),
        }
        for r in table.inspect.manifests().to_pylist()
    ]
    return _table(rows, "manifests")


def partitions(table: Table, snapshot_id: int | None) -> pa.Table:
    rows = [
        {
            "partition": _partition(table, r["spec_id"], r["partition"]),
            "spec_id": r["spec_id"],
            "records": r["record_count"],
            "files": r["file_count"],
        }
        for r in table.inspect.partitions(snapshot_id).to_pylist()
    ]
    return _table(rows, "partitions")


def _table(rows: list[dict], view: str) -> pa.Table:
    columns = COLUMNS[view]
    if not rows:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    return pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])


INSPECTORS: dict[str, Callable[[Table, int | None], pa.Table]] = {
    "files": files,
    "history": history,
    "snapshots": snapshots,
    "refs": refs,
    "manifests": manifests,
    "partitions": partitions,
}
assert tuple(INSPECTORS) == VIEWS
TREE_VIEWS = ("files", "manifests", "partitions")  # read the current snapshot's tree
AS_OF_VIEWS = ("files", "partitions")  # pyiceberg reads these as of any snapshot


def inspect_table(table: Table, view: str, snapshot_id: int | None = None) -> pa.Table:
    """``view`` (one of :data:`VIEWS`) of ``table``; ``snapshot_id`` for files/partitions as of that
    snapshot (history, snapshots and refs list everything; manifests are the current snapshot's)."""
    if view not in INSPECTORS:
        raise ValueError(f"no metadata view {view!r}: expected one of {', '.join(VIEWS)}")
    if snapshot_id is not None and view not in AS_OF_VIEWS:
        raise ValueError(f"a snapshot id applies to {' and '.join(AS_OF_VIEWS)} only, not {view}")
    if snapshot_id is not None and table.snapshot_by_id(snapshot_id) is None:
        raise ValueError(f"{'.'.join(table.name())} has no snapshot {snapshot_id}")
    if view in TREE_VIEWS and table.current_snapshot() is None:
        return _table([], view)  # a table never written has no tree to read
    return INSPECTORS[view](table, snapshot_id)
