"""``plan_table``: which contract/table differences are applied in place and which are refused."""

from __future__ import annotations

import dataclasses

import pytest
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.transforms import DayTransform, HourTransform
from pyiceberg.types import (
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from infrastructure.migrations import IncompatibleChange, check, is_widening, plan_table
from infrastructure.tables import BRONZE_TRADES, TABLES, TableDef

UNPARTITIONED = PartitionSpec()


def contract(*fields: NestedField, spec: PartitionSpec = UNPARTITIONED) -> TableDef:
    return TableDef("ns.t", Schema(*fields), spec, UNSORTED_SORT_ORDER, {}, "")


LIVE = Schema(
    NestedField(1, "n", IntegerType(), required=True),
    NestedField(2, "at", TimestamptzType(), required=True, doc="when"),
    NestedField(3, "note", StringType(), required=False),
)


def test_every_contract_is_its_own_plan_noop() -> None:
    for table in TABLES:
        plan = plan_table(table, table.schema, table.partition_spec)
        assert plan.empty and not plan.refusals, table.identifier


def test_compatible_changes_are_planned_in_one_readable_list() -> None:
    wanted = contract(
        NestedField(1, "n", LongType(), required=False, doc="a count"),
        NestedField(2, "at", TimestamptzType(), required=True, doc="when"),
        NestedField(3, "note", StringType(), required=False),
        NestedField(4, "extra", DecimalType(38, 18), required=False, doc="new"),
        spec=PartitionSpec(PartitionField(2, 1000, HourTransform(), "at_hour")),
    )
    plan = plan_table(wanted, LIVE, PartitionSpec())
    assert not plan.refusals
    assert plan.steps() == [
        "add column extra decimal(38, 18) (optional: new)",
        "widen column n to long",
        "make column n optional",
        "set doc of n: a count",
        "add partition field at_hour = hour(at)",
    ]


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ((NestedField(1, "n", IntegerType(), required=True), NestedField(2, "at", TimestamptzType(), required=True, doc="when")),
         "ns.t.note: in the table but not in the contract"),
        ((*LIVE.fields, NestedField(4, "must", StringType(), required=True)), "ns.t.must: a new column must be optional"),
        ((NestedField(1, "n", StringType(), required=True), *LIVE.fields[1:]), "ns.t.n: type int -> string"),
        ((*LIVE.fields[:2], NestedField(3, "note", StringType(), required=True)), "ns.t.note: optional -> required"),
    ],
    ids=["drop", "required-new", "retype", "tighten"],
)  # fmt: skip
def test_incompatible_changes_are_refused_with_the_column(fields, refused) -> None:
    plan = plan_table(contract(*fields), LIVE, PartitionSpec())
    assert any(r.startswith(refused) for r in plan.refusals), plan.refusals
    with pytest.raises(IncompatibleChange, match=r"^refused, no table changed: "):
        check([plan])


def test_a_partition_field_is_only_ever_added() -> None:
    live_spec = PartitionSpec(PartitionField(2, 1000, DayTransform(), "at_day"))
    (refusal,) = plan_table(contract(*LIVE.fields), LIVE, live_spec).refusals
    assert refusal.startswith("ns.t.at: partition field at_day (day) is not in the contract")


def test_the_bronze_evolution_is_one_partition_field() -> None:
    previous = PartitionSpec(*BRONZE_TRADES.partition_spec.fields[:1])
    plan = plan_table(BRONZE_TRADES, BRONZE_TRADES.schema, previous)
    assert plan.steps() == ["add partition field ingest_hour = hour(ingest_time)"]
    assert dataclasses.replace(plan, add_partition_fields=()).empty


def test_widenings_are_the_ones_iceberg_allows() -> None:
    assert is_widening(IntegerType(), LongType()) and is_widening(FloatType(), DoubleType())
    assert is_widening(DecimalType(10, 2), DecimalType(38, 2))
    assert not is_widening(DecimalType(10, 2), DecimalType(38, 3))  # a scale change rewrites values
    assert not is_widening(LongType(), IntegerType()) and not is_widening(IntegerType(), DoubleType())
