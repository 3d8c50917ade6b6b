"""Write-audit-publish for the hourly run (docs/write-audit-publish.md): where an hour is staged,
and how a passing audit makes it visible to readers, who only ever read ``main`` and ``gold.*``.

- **silver** (``silver.trades``, ``silver.trades_rejected``): the hour is committed to an Iceberg
  branch ``audit-YYYY-MM-DDTHH`` of each table, reset from ``main`` when the run starts. Publishing
  fast-forwards ``main`` to the branch head (only when ``main``'s snapshot is the head's ancestor:
  one ref update guarded by the snapshot it was read at, so ``main`` never goes backwards) and
  removes the branch. If ``main`` moved meanwhile (compaction), the hour is re-staged from the new
  ``main``: silver is idempotent per hour.
- **gold**: DuckDB cannot write an Iceberg branch, so dbt builds into the shadow namespace
  ``gold_audit`` (real Iceberg tables holding dbt's incremental state), reading silver at the staged
  snapshots. Publishing copies into each ``gold.<model>`` what the build changed, in ONE commit per
  table: for an incremental model the rows of the keys its new data files hold (the hour plus the
  lookback, not the table), for a ``table`` model all rows. Each publish commit names the
  ``gold_audit`` snapshot it copied (snapshot property ``SOURCE_PROPERTY``), which is how a re-run
  knows the publish happened (idempotent) and where ``gold_audit`` must restart from: before a
  build, an unpublished ``gold_audit`` state is kept under the tag ``audit-<hour>`` and the table is
  rolled back to the published snapshot (metadata only).

Both sides are bounded: audit branches are removed on publish, and ``stale_audit_refs`` lets
maintenance drop the ones a failed hour left behind once they are older than the retention.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import reduce

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchNamespaceError, NoSuchTableError
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo, In, Or
from pyiceberg.manifest import DataFileContent, ManifestEntryStatus
from pyiceberg.table import Table
from pyiceberg.table.refs import SnapshotRefType

from infrastructure.tables import SILVER_TRADES, SILVER_TRADES_REJECTED

log = logging.getLogger(__name__)

AUDIT_PREFIX = "audit-"
AUDIT_FORMAT = "%Y-%m-%dT%H"
STAGED_SILVER = (SILVER_TRADES.identifier, SILVER_TRADES_REJECTED.identifier)
GOLD_NAMESPACE = "gold"
AUDIT_NAMESPACE = "gold_audit"  # where dbt builds gold for the audit; readers never look here
PUBLISHED_TAG = "published"  # on gold_audit tables: the snapshot gold.* holds (kept from expiry)
SOURCE_PROPERTY = "lakehouse.wap.source-snapshot-id"  # on gold.* publish commits
HOUR_PROPERTY = "lakehouse.wap.hour"


class NotStaged(RuntimeError):
    """An hour's audit or publish asked for staged state that is not there."""


class MainMoved(RuntimeError):
    """``main`` is no longer an ancestor of the audit branch: the hour must be re-staged."""


def branch_name(hour: datetime) -> str:
    """The audit branch (and failed-gold tag) of the hour starting at ``hour``: ``audit-2026-12-01T10``."""
    return AUDIT_PREFIX + hour.astimezone(UTC).strftime(AUDIT_FORMAT)


def branch_hour(name: str) -> datetime | None:
    """The hour an audit ref of ours names (None for anyone else's ref)."""
    if not name.startswith(AUDIT_PREFIX):
        return None
    try:
        return datetime.strptime(name[len(AUDIT_PREFIX) :], AUDIT_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def stale_audit_refs(names: Iterable[str], now: datetime, keep: timedelta) -> list[str]:
    """Audit refs whose hour closed more than ``keep`` before ``now`` (a failed hour's staged state,
    kept for inspection that long)."""
    return sorted(
        n for n in names if (h := branch_hour(n)) is not None and h + timedelta(hours=1) < now - keep
    )


def ancestors(table: Table, snapshot_id: int) -> list[int]:
    """``snapshot_id`` and its ancestors' ids, newest first (a parent id whose snapshot was
    expired still ends the list: it is known from its child)."""
    chain: list[int] = []
    current: int | None = snapshot_id
    while current is not None and current not in chain:
        chain.append(current)
        snapshot = table.snapshot_by_id(current)
        current = snapshot.parent_snapshot_id if snapshot is not None else None
    return chain


# ---- silver: one Iceberg branch per table -------------------------------------------------------


def stage_branch(table: Table, branch: str) -> int:
    """Create or reset ``branch`` at ``main``'s current snapshot; returns that snapshot id.

    A table without any snapshot gets an empty one on ``main`` first: Iceberg refuses a branch of a
    table with no snapshot, and an empty snapshot reads exactly like no snapshot."""
    if table.current_snapshot() is None:
        table.append(table.schema().as_arrow().empty_table())
        table.refresh()
    current = table.current_snapshot()
    if current is None:
        raise NotStaged(f"{'.'.join(table.name())}: no snapshot to branch from")
    table.manage_snapshots().create_branch(current.snapshot_id, branch).commit()
    table.refresh()
    return current.snapshot_id


def stage_silver(catalog: Catalog, hour: datetime) -> dict[str, int]:
    """Reset the hour's audit branch of both silver tables from ``main``; returns the base snapshots."""
    name = branch_name(hour)
    return {identifier: stage_branch(catalog.load_table(identifier), name) for identifier in STAGED_SILVER}


def staged_snapshots(catalog: Catalog, hour: datetime) -> dict[str, int]:
    """The head of the hour's audit branch of each silver table (what gold builds from and the
    audit reads). Raises ``NotStaged`` naming the table when a branch is missing."""
    name = branch_name(hour)
    heads = {}
    for identifier in STAGED_SILVER:
        refs = catalog.load_table(identifier).metadata.refs
        if name not in refs:
            raise NotStaged(f"{identifier} has no branch {name!r}: run silver for the hour first")
        heads[identifier] = refs[name].snapshot_id
    return heads


def fast_forward(table: Table, branch: str) -> str:
    """Point ``main`` at ``branch``'s head and remove the branch, in one commit guarded by the
    snapshot ``main`` was read at. Returns what happened; raises ``MainMoved`` if ``main`` is not an
    ancestor of the head (nothing changed then). No branch: published already (idempotent)."""
    name = ".".join(table.name())
    ref = table.metadata.refs.get(branch)
    if ref is None:
        return "nothing staged"
    main = table.current_snapshot()
    main_id = main.snapshot_id if main is not None else None
    manage = table.manage_snapshots()
    if main_id == ref.snapshot_id:
        outcome = "unchanged"
    elif main_id in ancestors(table, ref.snapshot_id):
        manage = manage.set_current_snapshot(ref.snapshot_id)
        outcome = "published"
    else:
        raise MainMoved(f"{name}: main ({main_id}) moved since {branch} was staged; re-stage the hour")
    try:
        manage.remove_branch(branch).commit()
    except CommitFailedException as exc:  # main moved between our read and the commit
        raise MainMoved(f"{name}: main moved while publishing {branch}: {exc}") from exc
    table.refresh()
    log.info("%s: %s %s", name, branch, outcome)
    return outcome


def publish_silver(catalog: Catalog, hour: datetime) -> dict[str, str]:
    """Fast-forward both silver tables to the hour's audit branch (see ``fast_forward``)."""
    name = branch_name(hour)
    return {identifier: fast_forward(catalog.load_table(identifier), name) for identifier in STAGED_SILVER}


def discard_silver(catalog: Catalog, hour: datetime) -> list[str]:
    """Remove the hour's audit branches (``main`` untouched); returns the tables that had one."""
    name, removed = branch_name(hour), []
    for identifier in STAGED_SILVER:
        table = catalog.load_table(identifier)
        if name in table.metadata.refs:
            table.manage_snapshots().remove_branch(name).commit()
            removed.append(identifier)
    return removed


# ---- gold: the gold_audit shadow namespace ------------------------------------------------------


@dataclass(frozen=True)
class GoldModel:
    """What publishing needs of one dbt model (from dbt's manifest): its table name, and the key an
    incremental model replaces rows by (``None``: a ``table`` model, replaced whole)."""

    name: str
    unique_key: tuple[str, ...] | None


def gold_models(manifest: dict) -> list[GoldModel]:
    """The gold models of a dbt ``manifest.json`` (pure): every materialized model of the project."""
    models = []
    for node in manifest.get("nodes", {}).values():
        config = node.get("config", {})
        if node.get("resource_type") != "model" or config.get("materialized") not in ("table", "incremental"):
            continue
        key = config.get("unique_key") if config.get("materialized") == "incremental" else None
        key = (key,) if isinstance(key, str) else tuple(key) if key else None
        models.append(GoldModel(node.get("alias") or node["name"], key))
    return sorted(models, key=lambda m: m.name)


def published_source(gold: Table) -> int | None:
    """The ``gold_audit`` snapshot ``gold`` holds, as named by gold's current snapshot: a publish
    commit, or a maintenance rewrite (which carries the name forward, ``carried_properties``). Any
    other write (a by-hand ``lakehouse gold``, the backfill DAG) names none: gold is rebuilt whole."""
    current = gold.current_snapshot()
    if current is None:
        return None
    value = current.summary.additional_properties.get(SOURCE_PROPERTY) if current.summary else None
    return int(value) if value else None


def carried_properties(table: Table) -> dict[str, str]:
    """Snapshot properties a maintenance rewrite of a gold table must carry forward (the publish source)."""
    source = published_source(table)
    return {SOURCE_PROPERTY: str(source)} if source is not None else {}


def audit_tables(catalog: Catalog) -> list[str]:
    """The model names that have a ``gold_audit`` table (none before the first staged build)."""
    try:
        return sorted(name for _namespace, name in catalog.list_tables(AUDIT_NAMESPACE))
    except NoSuchNamespaceError:
        return []


def _load(catalog: Catalog, identifier: str) -> Table | None:
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        return None


def prepare_gold_audit(catalog: Catalog, hour: datetime, models: Iterable[str]) -> dict[str, str]:
    """Make each ``gold_audit.<model>`` hold what ``gold.<model>`` holds before dbt builds the hour.

    In step (the last publish copied its current snapshot): nothing. Ahead (a build that was never
    published, which ``mark_built`` tagged ``audit-<its hour>`` for inspection): roll back to the
    published snapshot. Out of step (no publish recorded, or its snapshot is gone): drop the shadow
    table, so dbt builds it whole from silver and the publish replaces gold's table whole."""
    catalog.create_namespace_if_not_exists(AUDIT_NAMESPACE)
    done = {}
    for model in models:
        audit = _load(catalog, f"{AUDIT_NAMESPACE}.{model}")
        if audit is None:
            done[model] = "absent"
            continue
        gold = _load(catalog, f"{GOLD_NAMESPACE}.{model}")
        source = published_source(gold) if gold is not None else None
        current = audit.current_snapshot()
        current_id = current.snapshot_id if current is not None else None
        if source is not None and source == current_id:
            done[model] = "in step"
        elif source is not None and audit.snapshot_by_id(source) is not None:
            # the unpublished state stays readable under the audit tag the gold step gave it
            audit.manage_snapshots().set_current_snapshot(source).commit()
            done[model] = f"rolled back to {source}"
        else:
            catalog.drop_table(f"{AUDIT_NAMESPACE}.{model}")
            done[model] = "dropped (rebuilt whole)"
    return done


def added_data_files(table: Table, since: int, until: int) -> list[str] | None:
    """Paths of the data files the snapshots after ``since`` up to ``until`` added (newest first);
    None if ``since`` is not an ancestor of ``until`` (then only a whole copy is safe)."""
    chain = ancestors(table, until)
    if since not in chain:
        return None
    paths: list[str] = []
    for snapshot_id in chain[: chain.index(since)]:
        snapshot = table.snapshot_by_id(snapshot_id)
        if snapshot is None:
            return None
        for manifest in snapshot.manifests(table.io):
            if manifest.added_snapshot_id != snapshot_id:
                continue
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                if (
                    entry.status == ManifestEntryStatus.ADDED
                    and entry.data_file.content == DataFileContent.DATA
                ):
                    paths.append(entry.data_file.file_path)
    return paths


def key_filter(keys: pa.Table) -> BooleanExpression:
    """A pyiceberg filter matching rows whose key columns equal one of ``keys``' rows: grouped by all
    key columns but the last, the last as an ``In`` (a candle key: venue, product, then its minutes)."""
    names = keys.column_names
    groups: dict[tuple, list] = {}
    for row in keys.to_pylist():
        groups.setdefault(tuple(row[n] for n in names[:-1]), []).append(row[names[-1]])
    terms = [
        reduce(And, [*(EqualTo(n, v) for n, v in zip(names[:-1], head, strict=True)), In(names[-1], values)])
        if head else In(names[-1], values)
        for head, values in sorted(groups.items(), key=repr)
    ]  # fmt: skip
    return reduce(Or, terms)


def _literal(value):
    # pyiceberg literals take ISO strings for timestamps; Arrow hands back datetimes
    return value.isoformat() if isinstance(value, datetime) else value


def changed_rows(
    audit: Table, model: GoldModel, since: int | None
) -> tuple[pa.Table, BooleanExpression] | None:
    """The rows of ``gold_audit`` that ``gold`` must take and the filter of gold's rows they replace
    (all of them for a whole copy); None when the snapshots since ``since`` added no data."""
    current = audit.current_snapshot()
    assert current is not None
    paths = (
        added_data_files(audit, since, current.snapshot_id)
        if since is not None and model.unique_key
        else None
    )
    if paths is None:
        return audit.scan().to_arrow(), AlwaysTrue()
    if not paths:
        return None
    columns = list(model.unique_key or ())
    keys = (
        pa.concat_tables(pq.read_table(audit.io.new_input(path).open(), columns=columns) for path in paths)
        .group_by(columns)
        .aggregate([])
    )
    keys = pa.table({c: pa.array([_literal(v) for v in keys.column(c).to_pylist()]) for c in columns})
    where = key_filter(keys)
    return audit.scan(row_filter=where).to_arrow(), where


def publish_gold(catalog: Catalog, hour: datetime, models: Iterable[GoldModel]) -> dict[str, str]:
    """Copy each ``gold_audit`` model's changes into ``gold``: one commit per table (delete of the
    replaced rows + append), naming its source snapshot. Idempotent: a table already holding its
    shadow's current snapshot is skipped. Then the shadow's ``published`` tag follows."""
    done = {}
    for model in models:
        audit = _load(catalog, f"{AUDIT_NAMESPACE}.{model.name}")
        if audit is None or audit.current_snapshot() is None:
            done[model.name] = "not built"
            continue
        source_id = audit.current_snapshot().snapshot_id
        identifier = f"{GOLD_NAMESPACE}.{model.name}"
        gold = _load(catalog, identifier)
        if gold is None:
            gold = catalog.create_table(identifier, schema=audit.schema())
        since = published_source(gold) if gold.current_snapshot() is not None else None
        change = None if since == source_id else changed_rows(audit, model, since)
        if change is None:  # nothing new: gold keeps naming the older source, whose delta still applies
            done[model.name] = "unchanged"
            remove_refs(audit, [branch_name(hour)])
            continue
        rows, where = change
        properties = {SOURCE_PROPERTY: str(source_id), HOUR_PROPERTY: hour.astimezone(UTC).isoformat()}
        with gold.transaction() as tx:
            if gold.schema().as_struct() != audit.schema().as_struct():
                with tx.update_schema() as update:
                    update.union_by_name(audit.schema())
            if gold.current_snapshot() is not None:
                with warnings.catch_warnings():  # new keys (the newest minutes) match no row: expected
                    warnings.filterwarnings("ignore", "Delete operation did not match any records")
                    tx.delete(where, snapshot_properties=properties)
            tx.append(rows.cast(audit.schema().as_arrow()), snapshot_properties=properties)
        done[model.name] = f"published {rows.num_rows} rows"
        tag_published(audit, source_id, branch_name(hour))
    return done


def tag_published(audit: Table, snapshot_id: int, audit_tag: str | None = None) -> None:
    """Move the shadow table's ``published`` tag (expiry keeps tagged snapshots) to ``snapshot_id``
    and drop the hour's audit tag, which a published state no longer needs; one commit."""
    ref = audit.metadata.refs.get(PUBLISHED_TAG)
    manage = audit.manage_snapshots()
    if audit_tag is not None and audit_tag in audit.metadata.refs:
        manage = manage.remove_tag(audit_tag)
    if ref is None or ref.snapshot_id != snapshot_id:
        if ref is not None:
            manage = manage.remove_tag(PUBLISHED_TAG)
        manage = manage.create_tag(snapshot_id, PUBLISHED_TAG)
    manage.commit()


def mark_built(catalog: Catalog, hour: datetime, models: Iterable[str]) -> None:
    """Tag each shadow table's new state ``audit-<hour>``: a failed audit's gold stays readable
    under that name after the next hour rolls the shadow back (``lakehouse query --ref``)."""
    tag = branch_name(hour)
    for model in models:
        audit = _load(catalog, f"{AUDIT_NAMESPACE}.{model}")
        if audit is None or audit.current_snapshot() is None:
            continue
        manage = audit.manage_snapshots()
        if tag in audit.metadata.refs:
            manage = manage.remove_tag(tag)
        manage.create_tag(audit.current_snapshot().snapshot_id, tag).commit()


def discard_gold(catalog: Catalog, hour: datetime, models: Iterable[str]) -> dict[str, str]:
    """Roll each ``gold_audit`` model back to what ``gold`` holds and drop the hour's audit tag;
    ``gold`` is untouched."""
    models = list(models)
    done = prepare_gold_audit(catalog, hour, models)
    for model in models:
        if (audit := _load(catalog, f"{AUDIT_NAMESPACE}.{model}")) is not None:
            remove_refs(audit, [branch_name(hour)])
    return done


def audit_refs(table: Table) -> list[str]:
    """The audit branches and tags of ``table`` (ours only)."""
    return sorted(n for n in table.metadata.refs if branch_hour(n) is not None)


def remove_refs(table: Table, names: Iterable[str]) -> int:
    """Remove the named branches and tags in one commit; returns how many."""
    names = [n for n in names if n in table.metadata.refs]
    if not names:
        return 0
    manage = table.manage_snapshots()
    for name in names:
        if table.metadata.refs[name].snapshot_ref_type == SnapshotRefType.TAG:
            manage = manage.remove_tag(name)
        else:
            manage = manage.remove_branch(name)
    manage.commit()
    return len(names)
