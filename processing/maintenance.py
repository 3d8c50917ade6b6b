"""Iceberg table maintenance: compact small files, expire old snapshots, delete orphan files.

pyiceberg has no rewrite-data-files action, so compaction rewrites each partition that has too
many files with one ``overwrite`` whose filter is exactly that partition: one atomic snapshot,
the same rows, sorted by the table's sort order. A concurrent writer that commits in between makes
the overwrite fail its commit check, and the partition is retried from a fresh read, so no row is
lost or doubled.

Snapshot expiry only edits metadata; the files it orphans (and files of failed writes) are removed
by ``remove_orphan_files``, which deletes objects under the table location that no retained
snapshot or metadata file references and that are older than a safety age (a write in flight has
files not referenced yet).

Catalogs that forbid garbage collection (Nessie sets ``gc.enabled=false``: its own GC owns file
deletion across branches) are detected: expiry and orphan cleanup are skipped with the reason,
compaction still runs.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pyarrow as pa
from pyarrow import fs as pafs
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import And, BooleanExpression, EqualTo, GreaterThanOrEqual, LessThan
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.utils.datetime import days_to_date

from infrastructure.job_metrics import run_and_push
from infrastructure.settings import MaintenanceSettings, S3Settings, Settings

log = logging.getLogger(__name__)
COMMIT_RETRIES = 5


class GarbageCollectionDisabled(RuntimeError):
    """The table's catalog owns file deletion (``gc.enabled=false``)."""


@dataclass(frozen=True)
class CompactionResult:
    table: str
    files_before: int
    files_after: int
    partitions_rewritten: int
    rows_rewritten: int


@dataclass(frozen=True)
class ExpiryResult:
    table: str
    snapshots_before: int
    snapshots_after: int
    skipped_reason: str = ""


@dataclass(frozen=True)
class OrphanResult:
    table: str
    objects_scanned: int
    orphans_deleted: list[str] = field(default_factory=list)
    skipped_reason: str = ""


# ------------------------------------------------------------------ pure decisions


def partitions_to_compact(files_per_partition: Counter, min_files: int) -> list[tuple]:
    """Partitions (as tuples of partition values) with at least ``min_files`` data files."""
    return sorted((p for p, n in files_per_partition.items() if n >= min_files), key=repr)


def partition_filter(spec: PartitionSpec, schema_names: dict[int, str], values: tuple) -> BooleanExpression:
    """The row filter that selects exactly one partition (identity and day transforms)."""
    terms: list[BooleanExpression] = []
    for part_field, value in zip(spec.fields, values, strict=True):
        column = schema_names[part_field.source_id]
        if isinstance(part_field.transform, DayTransform):
            day = days_to_date(value) if isinstance(value, int) else value
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            terms += [
                GreaterThanOrEqual(column, start.isoformat()),
                LessThan(column, (start + timedelta(days=1)).isoformat()),
            ]
        elif isinstance(part_field.transform, IdentityTransform):
            terms.append(EqualTo(column, value))
        else:
            raise NotImplementedError(f"compaction of {part_field.transform} partitions")
    return terms[0] if len(terms) == 1 else And(*terms)


def snapshots_to_expire(
    snapshots: list[tuple[int, int]], current_id: int | None, older_than_ms: int, retain_last: int
) -> list[int]:
    """Ids of snapshots (id, timestamp_ms) older than the cutoff, never the newest ``retain_last`` nor current."""
    newest_first = sorted(snapshots, key=lambda s: s[1], reverse=True)
    keep = {sid for sid, _ in newest_first[:retain_last]} | {current_id}
    return [sid for sid, ts in newest_first if ts < older_than_ms and sid not in keep]


def gc_allowed(table: Table) -> tuple[bool, str]:
    if table.properties.get("gc.enabled", "true").lower() == "false":
        return False, "gc.enabled=false on this table (the catalog's garbage collector owns file deletion)"
    return True, ""


# ------------------------------------------------------------------ actions


def data_files_per_partition(table: Table) -> Counter:
    files = table.inspect.files() if table.current_snapshot() else pa.table({"partition": []})
    counts: Counter = Counter()
    for partition in files.column("partition").to_pylist():
        counts[tuple((partition or {}).values())] += 1
    return counts


def compact(
    table: Table,
    min_files: int,
    snapshot_properties: Callable[[Table], dict[str, str]] = lambda _t: {},
) -> CompactionResult:
    """Rewrite every partition with at least ``min_files`` data files into as few files as possible.

    ``snapshot_properties(table)`` is added to each compaction snapshot's summary: the bronze
    writer uses it to carry its Kafka offsets forward, so they survive expiry of older snapshots.
    """
    before = data_files_per_partition(table)
    names = {f.field_id: f.name for f in table.schema().fields}
    sort_keys = [(names[f.source_id], "ascending") for f in table.sort_order().fields]
    rewritten = rows = 0
    for values in partitions_to_compact(before, min_files):
        for attempt in range(COMMIT_RETRIES):
            table.refresh()
            row_filter = partition_filter(table.spec(), names, values)
            data = table.scan(row_filter=row_filter).to_arrow()
            if sort_keys:
                data = data.sort_by(sort_keys)
            try:
                table.overwrite(
                    data, overwrite_filter=row_filter, snapshot_properties=snapshot_properties(table)
                )
            except CommitFailedException:
                log.info(
                    "compaction of %s %s lost a commit race (attempt %d); retrying",
                    table.name(),
                    values,
                    attempt,
                )
                continue
            rewritten += 1
            rows += data.num_rows
            break
        else:
            raise CommitFailedException(f"compaction of partition {values} failed {COMMIT_RETRIES} times")
    table.refresh()
    after = data_files_per_partition(table)
    return CompactionResult(
        ".".join(table.name()), sum(before.values()), sum(after.values()), rewritten, rows
    )


def expire_snapshots(table: Table, older_than: datetime, retain_last: int) -> ExpiryResult:
    name = ".".join(table.name())
    snapshots = table.snapshots()
    allowed, why = gc_allowed(table)
    if not allowed:
        return ExpiryResult(name, len(snapshots), len(snapshots), skipped_reason=why)
    current = table.current_snapshot()
    doomed = snapshots_to_expire(
        [(s.snapshot_id, s.timestamp_ms) for s in snapshots],
        current.snapshot_id if current else None,
        int(older_than.timestamp() * 1000),
        retain_last,
    )
    if doomed:
        table.maintenance.expire_snapshots().by_ids(doomed).commit()
        table.refresh()
    return ExpiryResult(name, len(snapshots), len(table.snapshots()))


def referenced_files(table: Table) -> set[str]:
    """Every object a retained snapshot or metadata file points at, as ``bucket/key`` paths."""
    io = table.io
    refs = {table.metadata_location, *(entry.metadata_file for entry in table.metadata.metadata_log)}
    refs |= {s.statistics_path for s in table.metadata.statistics}
    for snapshot in table.snapshots():
        refs.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            refs.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=False):
                refs.add(entry.data_file.file_path)
    return {_bucket_key(path) for path in refs}


def remove_orphan_files(
    table: Table, s3: S3Settings, older_than: datetime, dry_run: bool = False
) -> OrphanResult:
    name = ".".join(table.name())
    allowed, why = gc_allowed(table)
    if not allowed:
        return OrphanResult(name, 0, skipped_reason=why)
    filesystem = s3_filesystem(s3)
    referenced = referenced_files(table)
    listing = filesystem.get_file_info(pafs.FileSelector(_bucket_key(table.location()), recursive=True))
    objects = [info for info in listing if info.type == pafs.FileType.File]
    orphans = [
        info.path
        for info in objects
        if info.path not in referenced and info.mtime is not None and info.mtime.astimezone(UTC) < older_than
    ]
    if not dry_run:
        for path in orphans:
            filesystem.delete_file(path)
    return OrphanResult(name, len(objects), orphans)


def s3_filesystem(s3: S3Settings) -> pafs.S3FileSystem:
    key, secret = s3.credentials()
    endpoint = urlsplit(s3.endpoint)
    return pafs.S3FileSystem(
        access_key=key,
        secret_key=secret,
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme or "http",
        region=s3.region,
        force_virtual_addressing=False,
    )


def run_maintenance(
    table: Table,
    s3: S3Settings,
    policy: MaintenanceSettings,
    now: datetime | None = None,
    snapshot_properties: Callable[[Table], dict[str, str]] = lambda _t: {},
) -> dict:
    """Compaction, then expiry, then orphan cleanup on one table; returns what each step did.

    ``snapshot_properties`` goes to ``compact`` (bronze carries its writer's offsets with it)."""
    now = now or datetime.now(UTC)
    compaction = compact(table, policy.compact_min_files, snapshot_properties)
    expiry = expire_snapshots(
        table, now - timedelta(hours=policy.snapshot_retention_hours), policy.retain_last_snapshots
    )
    orphans = remove_orphan_files(table, s3, now - timedelta(hours=policy.orphan_min_age_hours))
    return {"compaction": compaction, "expiry": expiry, "orphans": orphans}


def job_name(identifier: str) -> str:
    """The pushed job of one table's maintenance, e.g. ``maintenance_bronze_trades``."""
    return f"maintenance_{identifier.replace('.', '_')}"


def maintenance_figures(result: dict) -> dict[str, int]:
    compaction, expiry = result["compaction"], result["expiry"]
    return {
        "files_before": compaction.files_before, "files_after": compaction.files_after,
        "snapshots_before": expiry.snapshots_before, "snapshots_after": expiry.snapshots_after,
        "orphans_deleted": len(result["orphans"].orphans_deleted),
    }  # fmt: skip


def maintenance_job(settings: Settings, identifier: str) -> dict:
    """Maintain one table and push the run as its job; the bronze writer's Kafka offsets are
    carried into every commit maintenance makes, so exactly-once survives it."""
    from infrastructure.catalog import load_catalog
    from processing.bronze.progress import offsets_properties

    table = load_catalog(settings).load_table(identifier)

    def run() -> dict:
        return run_maintenance(
            table, settings.s3, settings.maintenance, snapshot_properties=offsets_properties
        )

    return run_and_push(settings, job_name(identifier), run, maintenance_figures)


def _bucket_key(path: str) -> str:
    parts = urlsplit(path)
    return f"{parts.netloc}{parts.path}" if parts.scheme else path
