"""Bring live Iceberg tables to their contracts (``infrastructure/tables.py``), in place.

The contracts are the one source of truth; a live table created from an older contract is evolved
with Iceberg's metadata-only operations (pyiceberg ``update_schema`` / ``update_spec``), never by
rewriting data files. :func:`plan_table` is pure: it compares a contract with a table's current
schema and partition spec and returns what to do, and what it refuses, with the reason.

Compatible (applied): a new **optional** column (old rows read NULL), a type widening Iceberg
allows (int -> long, float -> double, decimal(P,S) -> decimal(P',S) with P' > P), required ->
optional, a changed doc, a new partition field (old files keep the spec they were written with;
new files use the new one, and a scan prunes each file by its own spec).

Refused (nothing is changed, in any table): a live column the contract lacks (a drop or rename),
a new required column (old rows have no value), optional -> required, any other type change, and a
live partition field the contract lacks (migrate only adds fields). The message names the table,
the column and why, so the contract or the table can be fixed by hand.

``lakehouse migrate [--dry-run]`` prints the plan and applies it; ``lakehouse init`` (and the
bootstrap every job shares) applies the same plan after creating what is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import (
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
)

from infrastructure.tables import TABLES, TableDef

log = logging.getLogger(__name__)
COMMIT_ATTEMPTS = 3  # another process may evolve or append meanwhile: re-plan from a fresh read


class IncompatibleChange(ValueError):
    """A contract differs from its live table in a way Iceberg cannot evolve in place."""


@dataclass(frozen=True)
class ColumnUpdate:
    """An existing column's changes; ``None`` means unchanged."""

    name: str
    field_type: IcebergType | None = None
    make_optional: bool = False
    doc: str | None = None


@dataclass(frozen=True)
class TablePlan:
    identifier: str
    add_columns: tuple[NestedField, ...] = ()
    update_columns: tuple[ColumnUpdate, ...] = ()
    add_partition_fields: tuple[tuple[str, PartitionField], ...] = ()  # (source column, field)
    refusals: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.add_columns or self.update_columns or self.add_partition_fields)

    def steps(self) -> list[str]:
        """The plan as one readable line per change."""
        lines = [
            f"add column {f.name} {f.field_type} (optional{f': {f.doc}' if f.doc else ''})"
            for f in self.add_columns
        ]
        for u in self.update_columns:
            if u.field_type is not None:
                lines.append(f"widen column {u.name} to {u.field_type}")
            if u.make_optional:
                lines.append(f"make column {u.name} optional")
            if u.doc is not None:
                lines.append(f"set doc of {u.name}: {u.doc}")
        lines += [
            f"add partition field {p.name} = {p.transform}({src})" for src, p in self.add_partition_fields
        ]
        return lines


def is_widening(old: IcebergType, new: IcebergType) -> bool:
    """The primitive promotions the Iceberg spec allows without rewriting data."""
    if isinstance(old, IntegerType) and isinstance(new, LongType):
        return True
    if isinstance(old, FloatType) and isinstance(new, DoubleType):
        return True
    return (
        isinstance(old, DecimalType)
        and isinstance(new, DecimalType)
        and new.scale == old.scale
        and new.precision > old.precision
    )


def _column_plan(
    table: str, wanted: NestedField, live: NestedField, refusals: list[str]
) -> ColumnUpdate | None:
    def refuse(why: str) -> None:
        refusals.append(f"{table}.{wanted.name}: {why}")

    field_type = None
    if wanted.field_type != live.field_type:
        if is_widening(live.field_type, wanted.field_type):
            field_type = wanted.field_type
        else:
            refuse(f"type {live.field_type} -> {wanted.field_type} is not a widening Iceberg allows")
    if wanted.required and not live.required:
        refuse("optional -> required: rows already written may hold NULL")
    make_optional = live.required and not wanted.required
    doc = wanted.doc if (wanted.doc or None) != (live.doc or None) else None
    if field_type is None and not make_optional and doc is None:
        return None
    return ColumnUpdate(wanted.name, field_type, make_optional, doc)


def plan_table(contract: TableDef, schema: Schema, spec: PartitionSpec) -> TablePlan:
    """What bringing a table with ``schema`` and ``spec`` to ``contract`` takes, or why it cannot."""
    name = contract.identifier
    refusals: list[str] = []
    live = {f.name: f for f in schema.fields}
    wanted = {f.name: f for f in contract.schema.fields}
    for column in live:
        if column not in wanted:
            refusals.append(
                f"{name}.{column}: in the table but not in the contract"
                " (dropping or renaming a column is not a compatible change)"
            )
    added, updated = [], []
    for column, want in wanted.items():
        if column not in live:
            if want.required:
                refusals.append(
                    f"{name}.{column}: a new column must be optional (rows already written have no value)"
                )
            else:
                added.append(want)
        elif (update := _column_plan(name, want, live[column], refusals)) is not None:
            updated.append(update)
    contract_names = {f.field_id: f.name for f in contract.schema.fields}
    live_fields = {(schema.find_column_name(p.source_id), str(p.transform)) for p in spec.fields}
    wanted_fields = {
        (contract_names[p.source_id], str(p.transform)): p for p in contract.partition_spec.fields
    }
    for p in spec.fields:
        if (schema.find_column_name(p.source_id), str(p.transform)) not in wanted_fields:
            refusals.append(
                f"{name}.{schema.find_column_name(p.source_id)}: partition field {p.name} ({p.transform}) is not"
                " in the contract (migrate only adds partition fields; remove one by hand)"
            )
    partitions = [(src, p) for (src, t), p in wanted_fields.items() if (src, t) not in live_fields]
    return TablePlan(name, tuple(added), tuple(updated), tuple(partitions), tuple(refusals))


def apply_plan(table: Table, plan: TablePlan) -> None:
    """Apply ``plan`` to ``table`` in one commit (schema and spec together: readers see both or neither)."""
    if plan.empty:
        return
    with table.transaction() as tx:
        if plan.add_columns or plan.update_columns:
            with tx.update_schema() as schema:
                for f in plan.add_columns:
                    schema.add_column(f.name, f.field_type, doc=f.doc, required=False)
                for u in plan.update_columns:
                    schema.update_column(
                        u.name,
                        field_type=u.field_type,
                        required=False if u.make_optional else None,
                        doc=u.doc,
                    )
        if plan.add_partition_fields:
            with tx.update_spec() as spec:
                for source, p in plan.add_partition_fields:
                    spec.add_field(source, p.transform, p.name)


@dataclass(frozen=True)
class MigrationResult:
    plans: list[TablePlan] = field(default_factory=list)
    applied: bool = False

    def changed(self) -> list[TablePlan]:
        return [p for p in self.plans if not p.empty]


def plan_all(catalog: Catalog, tables: Iterable[TableDef] = TABLES) -> list[TablePlan]:
    """One plan per contract table that exists (a missing table is bootstrap's to create)."""
    plans = []
    for contract in tables:
        try:
            live = catalog.load_table(contract.identifier)
        except NoSuchTableError:
            continue
        plans.append(plan_table(contract, live.schema(), live.spec()))
    return plans


def check(plans: Iterable[TablePlan]) -> None:
    """Raise :class:`IncompatibleChange` naming every refused column, if any."""
    refusals = [r for p in plans for r in p.refusals]
    if refusals:
        raise IncompatibleChange("refused, no table changed: " + "; ".join(refusals))


def migrate(
    catalog: Catalog, tables: tuple[TableDef, ...] = TABLES, dry_run: bool = False
) -> MigrationResult:
    """Plan every table; if anything is refused raise before touching any table, else apply.

    A commit that loses a race (another writer evolved or appended meanwhile) is re-planned from a
    fresh read, so running it concurrently with itself or with the writers is safe."""
    for attempt in range(COMMIT_ATTEMPTS):
        plans = plan_all(catalog, tables)
        check(plans)
        if dry_run:
            return MigrationResult(plans, applied=False)
        try:
            for plan in plans:
                if not plan.empty:
                    apply_plan(catalog.load_table(plan.identifier), plan)
                    log.info("migrated %s: %s", plan.identifier, "; ".join(plan.steps()))
        except CommitFailedException:
            log.info("migration lost a commit race (attempt %d); re-planning", attempt + 1)
            continue
        return MigrationResult(plans, applied=True)
    raise CommitFailedException(f"migration failed to commit {COMMIT_ATTEMPTS} times")
