"""Iceberg table maintenance made for tables that commit every few seconds: every cost per run is
bounded by the data and the retention window, never by the table's age (docs/maintenance.md).

Per table, hourly (``maintain_hour``, called by the crypto_maintenance DAG and by bench/soak.py):
1. **properties**: manifest merging on (``commit.manifest-merge.*``), so appends fold the current
   snapshot's manifests together instead of adding one per commit forever;
2. **tag** the closed hour (``hour-YYYY-MM-DDTHH``, ref max-age = the retention) unless the bronze
   writer already tagged it at the hour boundary, and drop tags older than the retention window:
   time travel reaches every hour boundary of the window;
3. **compact the hour just closed**: the files whose rows were ingested in that hour are rewritten
   with one ``overwrite`` filtered on that hour's ``ingest_time`` (tables without that column:
   partitions with too many files). A concurrent writer that commits in between makes the
   overwrite fail its commit check, and the hour is retried from a fresh read, so no row is lost or
   doubled; ``snapshot_properties`` carries the bronze writer's Kafka offsets into the new snapshot;
4. **expire** every snapshot that is neither among the newest ``retain_last_snapshots`` nor a
   tag/branch head, in one commit (the bronze writer does the same every few commits);
5. **remove orphans**: objects under the table location that no retained snapshot or metadata
   file references and older than a safety age. Each distinct manifest is read once; what is
   retained is bounded (newest N + one tag per hour of the window), so the run is too.

Catalogs that forbid garbage collection (Nessie sets ``gc.enabled=false``: its own GC owns file
deletion across branches) are detected: expiry and orphan cleanup are skipped with the reason,
tagging and compaction still run.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
from prometheus_client import CollectorRegistry, Gauge
from pyarrow import fs as pafs
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo, GreaterThanOrEqual, LessThan
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.table import Table
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.transforms import DayTransform, HourTransform, IdentityTransform
from pyiceberg.utils.datetime import days_to_date

from infrastructure.seaweed_log import LogPurge
from infrastructure.settings import MaintenanceSettings, S3Settings
from infrastructure.tables import MANIFEST_MERGE
from processing import wap

log = logging.getLogger(__name__)
COMMIT_RETRIES = 5
HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # hour partition values count hours from here
TAG_PREFIX = "hour-"
TAG_FORMAT = "%Y-%m-%dT%H"
_TAG = re.compile(r"^hour-(\d{4}-\d{2}-\d{2}T\d{2})$")
HOURLY_COLUMN = "ingest_time"  # the hour a row was written in (bronze, silver, rejects)
MANIFEST_READERS = 8


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
    manifests_read: int = 0


@dataclass(frozen=True)
class TagResult:
    table: str
    created: str | None
    removed: list[str] = field(default_factory=list)
    audit_refs_removed: list[str] = field(default_factory=list)  # a failed hour's, past their retention


@dataclass(frozen=True)
class TableStats:
    """What bounds a table's per-commit and per-query cost."""

    snapshots: int
    tags: int
    manifests: int
    data_files: int
    metadata_bytes: int
    audit_refs: int = 0  # write-audit-publish branches/tags a failed hour left (bounded by their retention)


@dataclass(frozen=True)
class HourlyResult:
    table: str
    hour: datetime  # start of the hour just closed
    tags: TagResult
    compaction: CompactionResult
    expiry: ExpiryResult
    orphans: OrphanResult
    stats: TableStats
    step_seconds: dict[str, float]

    def metric_counts(self) -> dict[str, float]:
        return {
            "files_before": self.compaction.files_before,
            "files_after": self.compaction.files_after,
            "rows_compacted": self.compaction.rows_rewritten,
            "snapshots_expired": self.expiry.snapshots_before - self.expiry.snapshots_after,
            "orphans_deleted": len(self.orphans.orphans_deleted),
        }


# ------------------------------------------------------------------ pure decisions


def partitions_to_compact(files_per_partition: Counter, min_files: int) -> list[tuple]:
    """Partitions (as tuples of partition values) with at least ``min_files`` data files."""
    return sorted((p for p, n in files_per_partition.items() if n >= min_files), key=repr)


def partition_filter(spec: PartitionSpec, schema_names: dict[int, str], values: tuple) -> BooleanExpression:
    """The row filter that selects exactly one partition (identity, day and hour transforms). A field
    with no value (files written before partition evolution added it) selects nothing more narrowly."""
    terms: list[BooleanExpression] = []
    for part_field, value in zip(spec.fields, values, strict=True):
        column = schema_names[part_field.source_id]
        if value is None and not isinstance(part_field.transform, IdentityTransform):
            continue
        if isinstance(part_field.transform, HourTransform):
            start = EPOCH + timedelta(hours=value) if isinstance(value, int) else value
            terms.append(hour_filter(column, start))
        elif isinstance(part_field.transform, DayTransform):
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
    if not terms:
        return AlwaysTrue()
    return terms[0] if len(terms) == 1 else And(*terms)


def hour_filter(column: str, hour: datetime) -> BooleanExpression:
    """Rows whose ``column`` falls in ``[hour, hour + 1 h)``."""
    return And(GreaterThanOrEqual(column, hour.isoformat()), LessThan(column, (hour + HOUR).isoformat()))


def snapshots_to_expire(
    snapshots: list[tuple[int, int]],
    current_id: int | None,
    older_than_ms: int | None,
    retain_last: int,
    protected: Iterable[int] = (),
) -> list[int]:
    """Ids of snapshots (id, timestamp_ms) to expire: never the newest ``retain_last``, the current
    one or a ``protected`` one (tag and branch heads); with ``older_than_ms`` only older ones."""
    newest_first = sorted(snapshots, key=lambda s: s[1], reverse=True)
    keep = {sid for sid, _ in newest_first[:retain_last]} | {current_id} | set(protected)
    return [
        sid for sid, ts in newest_first if sid not in keep and (older_than_ms is None or ts < older_than_ms)
    ]


def hour_start(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def tag_name(hour: datetime) -> str:
    """The tag of the table as it was when ``hour`` (its start) closed: ``hour-2026-12-01T10``."""
    return TAG_PREFIX + hour_start(hour).strftime(TAG_FORMAT)


def _max_age_ms(retention: timedelta) -> int:
    return max(1, int(retention.total_seconds() * 1000))  # Iceberg refuses a max-age of 0


def tag_hour(name: str) -> datetime | None:
    """The hour a tag of ours names (None for anyone else's ref)."""
    match = _TAG.match(name)
    return datetime.strptime(match.group(1), TAG_FORMAT).replace(tzinfo=UTC) if match else None


def tags_to_remove(names: Iterable[str], now: datetime, retention: timedelta) -> list[str]:
    """Our hourly tags whose hour closed longer than ``retention`` before ``now``."""
    return sorted(n for n in names if (h := tag_hour(n)) is not None and h + HOUR < now - retention)


def snapshot_as_of(points: Iterable[tuple[int, int]], when: datetime) -> int | None:
    """The snapshot (id, timestamp_ms) that was current at ``when``: the newest at or before it."""
    cutoff = int(when.timestamp() * 1000)
    before = [p for p in points if p[1] <= cutoff]
    return max(before, key=lambda p: p[1])[0] if before else None


def time_travel_points(table: Table) -> list[tuple[int, int]]:
    """The snapshots time travel may land on: main's retained history and our hourly tags.

    Expiry trims the snapshot log (Iceberg's rule: it must be an unbroken history), so an engine
    resolving a time through it (DuckDB) cannot see the hourly tags; resolving here can. Other
    branches' snapshots (an audit branch not yet published) are never a point of main's past."""
    points, snapshot = {}, table.current_snapshot()
    while snapshot is not None:
        points[snapshot.snapshot_id] = snapshot.timestamp_ms
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    for name, ref in table.metadata.refs.items():
        if tag_hour(name) is not None and (tagged := table.snapshot_by_id(ref.snapshot_id)) is not None:
            points[tagged.snapshot_id] = tagged.timestamp_ms
    return sorted(points.items(), key=lambda p: p[1])


def gc_allowed(table: Table) -> tuple[bool, str]:
    if table.properties.get("gc.enabled", "true").lower() == "false":
        return False, "gc.enabled=false on this table (the catalog's garbage collector owns file deletion)"
    return True, ""


# ------------------------------------------------------------------ actions


def ensure_properties(table: Table, wanted: dict[str, str] = MANIFEST_MERGE) -> bool:
    """Set the properties a table lacks (created before the contract had them); a value an operator
    set is kept. True if any was set."""
    missing = {k: v for k, v in wanted.items() if k not in table.properties}
    if missing:
        with table.transaction() as tx:
            tx.set_properties(missing)
    return bool(missing)


def table_stats(table: Table) -> TableStats:
    snapshot = table.current_snapshot()
    summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
    manifests = len(snapshot.manifests(table.io)) if snapshot else 0
    try:
        metadata_bytes = len(table.io.new_input(table.metadata_location))
    except OSError:
        metadata_bytes = 0
    tags = sum(r.snapshot_ref_type == SnapshotRefType.TAG for r in table.metadata.refs.values())
    return TableStats(
        len(table.snapshots()), tags, manifests, int(summary.get("total-data-files", 0)), metadata_bytes,
        len(wap.audit_refs(table)),
    )  # fmt: skip


def tag_closed_hour(
    table: Table, hour: datetime, retention: timedelta, now: datetime, snapshot_id: int | None = None
) -> TagResult:
    """Tag ``snapshot_id`` (default: the current snapshot) as the state at ``hour``'s close unless the
    tag exists, and drop our tags older than ``retention``; one commit."""
    name = ".".join(table.name())
    refs = table.metadata.refs
    target = (
        snapshot_id if snapshot_id is not None else getattr(table.current_snapshot(), "snapshot_id", None)
    )
    create = tag_name(hour) if target is not None and tag_name(hour) not in refs else None
    doomed = [t for t in tags_to_remove(refs, now, retention) if t != create]
    if create is None and not doomed:
        return TagResult(name, None)
    manage = table.manage_snapshots()
    if create is not None:
        manage = manage.create_tag(target, create, max_ref_age_ms=_max_age_ms(retention))
    for tag in doomed:
        manage = manage.remove_tag(tag)
    manage.commit()
    return TagResult(name, create, doomed)


def drop_stale_audit_refs(table: Table, now: datetime, keep: timedelta) -> list[str]:
    """Remove the write-audit-publish branches and tags (``audit-<hour>``) a failed hour left, once
    older than ``keep``: what bounds their number (a published hour removes its own at once)."""
    doomed = wap.stale_audit_refs(table.metadata.refs, now, keep)
    wap.remove_refs(table, doomed)
    if doomed:
        table.refresh()
    return doomed


def data_files_per_partition(table: Table) -> Counter:
    files = table.inspect.files() if table.current_snapshot() else pa.table({"partition": []})
    counts: Counter = Counter()
    for partition in files.column("partition").to_pylist():
        counts[tuple((partition or {}).values())] += 1
    return counts


def _overwrite_retrying(
    table: Table,
    row_filter: BooleanExpression,
    snapshot_properties: Callable[[Table], dict[str, str]],
    what: str,
) -> int:
    """Rewrite the rows ``row_filter`` selects as one sorted overwrite, re-read and retried if
    another commit lands first; returns the rows rewritten."""
    names = {f.field_id: f.name for f in table.schema().fields}
    sort_keys = [(names[f.source_id], "ascending") for f in table.sort_order().fields]
    for attempt in range(COMMIT_RETRIES):
        table.refresh()
        data = table.scan(row_filter=row_filter).to_arrow()
        if sort_keys:
            data = data.sort_by(sort_keys)
        try:
            table.overwrite(data, overwrite_filter=row_filter, snapshot_properties=snapshot_properties(table))
        except CommitFailedException:
            log.info("compaction of %s %s lost a commit race (attempt %d); retrying",
                     table.name(), what, attempt)  # fmt: skip
            continue
        return data.num_rows
    raise CommitFailedException(f"compaction of {what} failed {COMMIT_RETRIES} times")


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
    rewritten = rows = 0
    for values in partitions_to_compact(before, min_files):
        row_filter = partition_filter(table.spec(), names, values)
        rows += _overwrite_retrying(table, row_filter, snapshot_properties, f"partition {values}")
        rewritten += 1
    table.refresh()
    after = data_files_per_partition(table)
    return CompactionResult(
        ".".join(table.name()), sum(before.values()), sum(after.values()), rewritten, rows
    )


def compact_hour(
    table: Table,
    hour: datetime,
    min_files: int,
    snapshot_properties: Callable[[Table], dict[str, str]] = lambda _t: {},
) -> CompactionResult:
    """Rewrite the data files holding rows ingested in ``hour`` once there are ``min_files`` of them.

    Cost: the hour's rows (plus the rest of a file straddling its edges), whatever the table's age.
    Tables without an ``ingest_time`` column fall back to ``compact`` (whole partitions)."""
    if HOURLY_COLUMN not in table.schema().column_names:
        return compact(table, min_files, snapshot_properties)
    name = ".".join(table.name())
    row_filter = hour_filter(HOURLY_COLUMN, hour)
    before = table.inspect.files() if table.current_snapshot() else None
    total_before = before.num_rows if before is not None else 0
    hour_files = sum(1 for _ in table.scan(row_filter=row_filter).plan_files()) if before is not None else 0
    if hour_files < min_files:
        return CompactionResult(name, total_before, total_before, 0, 0)
    rows = _overwrite_retrying(table, row_filter, snapshot_properties, f"hour {hour:%Y-%m-%dT%H}")
    table.refresh()
    return CompactionResult(name, total_before, table.inspect.files().num_rows, 1, rows)


def expire_snapshots(table: Table, older_than: datetime | None, retain_last: int) -> ExpiryResult:
    """Expire, in one commit, every snapshot that is not among the newest ``retain_last``, not the
    head of a tag or branch and (if ``older_than`` is given) older than it."""
    name = ".".join(table.name())
    snapshots = table.snapshots()
    allowed, why = gc_allowed(table)
    if not allowed:
        return ExpiryResult(name, len(snapshots), len(snapshots), skipped_reason=why)
    current = table.current_snapshot()
    doomed = snapshots_to_expire(
        [(s.snapshot_id, s.timestamp_ms) for s in snapshots],
        current.snapshot_id if current else None,
        int(older_than.timestamp() * 1000) if older_than is not None else None,
        retain_last,
        protected={ref.snapshot_id for ref in table.metadata.refs.values()},
    )
    if doomed:
        table.maintenance.expire_snapshots().by_ids(doomed).commit()
    return ExpiryResult(name, len(snapshots), len(table.snapshots()))


def referenced_files(table: Table) -> tuple[set[str], int]:
    """Every object a retained snapshot or metadata file points at, as ``bucket/key`` paths, and the
    number of manifests read (each distinct manifest once, however many snapshots share it)."""
    io = table.io
    refs = {table.metadata_location, *(entry.metadata_file for entry in table.metadata.metadata_log)}
    refs |= {s.statistics_path for s in table.metadata.statistics}
    manifests = {}
    for snapshot in table.snapshots():
        refs.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            manifests.setdefault(manifest.manifest_path, manifest)
    refs |= set(manifests)

    def data_files(manifest) -> list[str]:
        return [e.data_file.file_path for e in manifest.fetch_manifest_entry(io, discard_deleted=False)]

    with ThreadPoolExecutor(MANIFEST_READERS) as pool:
        for paths in pool.map(data_files, manifests.values()):
            refs.update(paths)
    return {_bucket_key(path) for path in refs}, len(manifests)


def remove_orphan_files(
    table: Table, s3: S3Settings, older_than: datetime, dry_run: bool = False
) -> OrphanResult:
    name = ".".join(table.name())
    allowed, why = gc_allowed(table)
    if not allowed:
        return OrphanResult(name, 0, skipped_reason=why)
    filesystem = s3_filesystem(s3)
    referenced, manifests_read = referenced_files(table)
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
    return OrphanResult(name, len(objects), orphans, manifests_read=manifests_read)


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
    """Whole-table compaction, expiry (by age), then orphan cleanup; returns what each step did.

    The catch-all for a table nobody maintained: ``maintain_hour`` is the bounded hourly run."""
    now = now or datetime.now(UTC)
    compaction = compact(table, policy.compact_min_files, snapshot_properties)
    expiry = expire_snapshots(
        table, now - timedelta(hours=policy.snapshot_retention_hours), policy.retain_last_snapshots
    )
    orphans = remove_orphan_files(table, s3, now - timedelta(hours=policy.orphan_min_age_hours))
    return {"compaction": compaction, "expiry": expiry, "orphans": orphans}


def maintain_hour(
    table: Table,
    s3: S3Settings,
    policy: MaintenanceSettings,
    now: datetime,
    snapshot_properties: Callable[[Table], dict[str, str]] = lambda _t: {},
) -> HourlyResult:
    """The hourly run for the hour that closed last before ``now`` (see the module docstring)."""
    # a plain aware datetime: pendulum's (Airflow's) loses its zone when a timedelta is subtracted
    now = datetime.fromtimestamp(now.timestamp(), UTC)
    hour = hour_start(now) - HOUR
    retention = timedelta(hours=policy.snapshot_retention_hours)
    seconds: dict[str, float] = {}

    def timed(step: str, run: Callable[[], object]):
        started = time.perf_counter()
        try:
            return run()
        finally:
            seconds[step] = time.perf_counter() - started

    table.refresh()
    timed("properties", lambda: ensure_properties(table))
    tags = timed("tag", lambda: tag_closed_hour(table, hour, retention, now))
    audit_keep = timedelta(hours=policy.audit_ref_retention_hours)
    stale = timed("audit_refs", lambda: drop_stale_audit_refs(table, now, audit_keep))
    tags = replace(tags, audit_refs_removed=stale)
    compaction = timed(
        "compact", lambda: compact_hour(table, hour, policy.compact_min_files, snapshot_properties)
    )
    expiry = timed("expire", lambda: expire_snapshots(table, None, policy.retain_last_snapshots))
    orphans = timed(
        "orphans",
        lambda: remove_orphan_files(table, s3, now - timedelta(hours=policy.orphan_min_age_hours)),
    )
    table.refresh()
    return HourlyResult(
        ".".join(table.name()), hour, tags, compaction, expiry, orphans, table_stats(table), seconds
    )


@dataclass
class StreamingRetention:
    """The continuous part of the policy, folded into the bronze writer's appends.

    An hour of 5-second commits is 720 snapshots; waiting for the hourly run would let every commit
    of the hour pay for them. So each append is one transaction that may also
    - tag the snapshot it is based on as the close of the previous hour, on this writer's first
      append of a new hour (exact: the table as it stood at the boundary, as far as this writer's
      commits go);
    - every ``expire_every_commits`` appends, expire what is neither among the newest
      ``retain_last_snapshots`` nor tagged.
    One commit, one catalog round trip: the append's own check (the ``main`` ref it was based on)
    covers all of it, so a conflict retries the whole, and nothing extra runs between appends.
    ``clock`` is the writer's notion of now (bench/soak.py simulates it)."""

    policy: MaintenanceSettings
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    commits: int = 0
    hour: datetime | None = None  # the hour of this writer's previous append

    def append(self, table: Table, data: pa.Table, snapshot_properties: dict[str, str]) -> None:
        from pyiceberg.table.update.snapshot import ExpireSnapshots, ManageSnapshots

        now = self.clock()
        hour = hour_start(now)
        based_on = table.current_snapshot()
        retention = timedelta(hours=self.policy.snapshot_retention_hours)
        with table.transaction() as tx:
            if self.hour is not None and hour > self.hour and based_on is not None:
                name = tag_name(self.hour)
                manage = ManageSnapshots(tx)
                if name not in table.metadata.refs:
                    manage.create_tag(based_on.snapshot_id, name, _max_age_ms(retention))
                for old in tags_to_remove(table.metadata.refs, now, retention):
                    manage.remove_tag(old)
                manage.commit()
            tx.append(data, snapshot_properties=snapshot_properties)
            if (self.commits + 1) % self.policy.expire_every_commits == 0 and gc_allowed(table)[0]:
                doomed = snapshots_to_expire(
                    [(s.snapshot_id, s.timestamp_ms) for s in table.snapshots()],
                    based_on.snapshot_id if based_on else None,
                    None,
                    # the append adds one: keep the newest N including it
                    self.policy.retain_last_snapshots - 1,
                    protected={ref.snapshot_id for ref in table.metadata.refs.values()},
                )
                if doomed:
                    ExpireSnapshots(tx).by_ids(doomed).commit()
        self.commits += 1
        self.hour = hour


def table_registry(
    result: HourlyResult, now: float | None = None, registry: CollectorRegistry | None = None
) -> CollectorRegistry:
    """Gauges of one table after its hourly run (pure: no I/O), in ``registry`` or a new one."""
    registry = registry if registry is not None else CollectorRegistry()
    stats = result.stats
    for metric, doc, value in (
        ("lakehouse_table_snapshots", "Snapshots retained by the table", stats.snapshots),
        ("lakehouse_table_tags", "Hourly tags (time travel points) on the table", stats.tags),
        ("lakehouse_table_manifests", "Manifests in the current snapshot", stats.manifests),
        ("lakehouse_table_data_files", "Data files in the current snapshot", stats.data_files),
        ("lakehouse_table_metadata_bytes", "Size of the current metadata.json", stats.metadata_bytes),
        ("lakehouse_table_audit_refs", "Audit branches and tags (write-audit-publish) a failed hour left on the table",
         stats.audit_refs),
        ("lakehouse_table_last_maintenance_timestamp_seconds", "When the hourly maintenance last finished",
         now if now is not None else time.time()),
    ):  # fmt: skip
        Gauge(metric, doc, ["table"], registry=registry).labels(result.table).set(value)
    steps = Gauge(
        "lakehouse_maintenance_step_duration_seconds", "Duration of each step of the last hourly run",
        ["table", "step"], registry=registry,
    )  # fmt: skip
    for step, value in result.step_seconds.items():
        steps.labels(result.table, step).set(value)
    return registry


MAINTAINED_TABLES = (
    "bronze.trades", "silver.trades", "silver.trades_rejected",
    # a reference-price writer commits every few seconds too: its snapshots and files need the same care
    "bronze.reference_prices", "silver.reference_prices",
)  # fmt: skip


def maintained_tables(catalog) -> list[str]:
    """Bronze and silver, and every gold table dbt has built (their names come from the models), in
    ``gold`` and in write-audit-publish's shadow ``gold_audit``."""
    gold = []
    for namespace in (wap.GOLD_NAMESPACE, wap.AUDIT_NAMESPACE):
        try:
            gold += [".".join(identifier) for identifier in catalog.list_tables(namespace)]
        except Exception as exc:  # no such namespace yet (a fresh stack): nothing there to maintain
            log.info("no %s tables to maintain: %s", namespace, exc)
    return [*MAINTAINED_TABLES, *sorted(gold)]


def run_hourly(settings, identifier: str, now: datetime) -> HourlyResult:
    """One table's hourly run as the DAG task runs it: load, maintain the hour closed before
    ``now``, push the run's figures (job ``maintenance_<table>``) and the table's gauges."""
    from infrastructure.catalog import load_catalog
    from infrastructure.job_metrics import run_and_push
    from processing.bronze.progress import offsets_properties

    table = load_catalog(settings).load_table(identifier)
    job = f"maintenance_{identifier.replace('.', '_')}"

    # bronze's commits carry the writer's Kafka offsets and recorded resets, gold's the snapshot of
    # gold_audit they were published from (other tables have none of either)
    def carried(t: Table) -> dict[str, str]:
        return {**offsets_properties(t), **wap.carried_properties(t)}

    result = run_and_push(
        settings, job,
        lambda: maintain_hour(table, settings.s3, settings.maintenance, now, carried),
        HourlyResult.metric_counts, None, lambda r, registry: table_registry(r, registry=registry),
    )  # fmt: skip
    return result


HOUSEKEEPING_JOB = "maintenance_housekeeping"


@dataclass(frozen=True)
class Housekeeping:
    """What the hourly run cut from what a running stack accumulates besides its tables."""

    journal: LogPurge | None  # None without an embedded SeaweedFS
    service_logs_rotated: list[str]
    task_logs_deleted: int
    task_log_bytes_deleted: int

    def metric_counts(self) -> dict[str, float]:
        journal = self.journal.metric_counts() if self.journal is not None else {}
        return {
            **journal,
            "service_logs_rotated": len(self.service_logs_rotated),
            "task_logs_deleted": self.task_logs_deleted,
            "task_log_bytes_deleted": self.task_log_bytes_deleted,
        }

    def summary(self) -> str:
        journal = (
            self.journal.summary() if self.journal is not None else "storage log: no embedded SeaweedFS here"
        )
        return (
            f"{journal}; service logs rotated: {', '.join(self.service_logs_rotated) or 'none'}; "
            f"Airflow task logs deleted: {self.task_logs_deleted} ({self.task_log_bytes_deleted / 1e6:.1f} MB)"
        )


def housekeeping_registry(result: Housekeeping, registry: CollectorRegistry) -> None:
    """The storage journal's size after the purge (``lakehouse_storage_log_bytes``)."""
    if result.journal is not None:
        Gauge(
            "lakehouse_storage_log_bytes",
            "Bytes of SeaweedFS's filer metadata log kept after the hourly purge",
            registry=registry,
        ).set(result.journal.bytes_kept)


def run_housekeeping(
    settings, now: datetime, task_log_folder: Path | None = None, journal_older_than: datetime | None = None
) -> Housekeeping:
    """Bound what a running stack accumulates besides its tables, and push the figures (job
    ``maintenance_housekeeping``):
    - SeaweedFS's filer journal older than ``storage_log_retention_hours`` before ``now``, where this
      process reaches the stack's SeaweedFS with ``weed shell`` (embedded; the compose stack's
      master purges its own: ``infrastructure.seaweed_log``). ``journal_older_than`` overrides the
      cutoff for a caller whose clock is not the journal's wall clock (bench/soak.py);
    - the service logs under ``<data_dir>/logs`` over ``service_log_max_mb`` (copy and truncate);
    - Airflow's task logs under ``task_log_folder`` older than ``task_log_retention_days``
      (``infrastructure.housekeeping``)."""
    from infrastructure import housekeeping, seaweed_log
    from infrastructure.job_metrics import run_and_push

    policy = settings.maintenance

    def run() -> Housekeeping:
        journal = None
        if seaweed_log.shell_available(settings):
            cutoff = journal_older_than or now - timedelta(hours=policy.storage_log_retention_hours)
            journal = seaweed_log.purge_log(settings, cutoff)
        rotated = housekeeping.rotate_service_logs(
            settings.data_dir / "logs", policy.service_log_max_mb * 2**20
        )
        pruned = (
            housekeeping.prune_old_files(
                task_log_folder, now - timedelta(days=policy.task_log_retention_days)
            )
            if task_log_folder is not None
            else housekeeping.FilesPruned(0, 0)
        )
        return Housekeeping(journal, [p.name for p in rotated], pruned.files, pruned.bytes)

    result = run_and_push(
        settings, HOUSEKEEPING_JOB, run, Housekeeping.metric_counts, None, housekeeping_registry
    )
    log.info(result.summary())
    return result


def _bucket_key(path: str) -> str:
    parts = urlsplit(path)
    return f"{parts.netloc}{parts.path}" if parts.scheme else path
