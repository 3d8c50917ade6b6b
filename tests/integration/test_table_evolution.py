"""Schema and partition evolution on real services: a live table of the previous contract is
migrated in place (``infrastructure/migrations.py``), the product keeps working across the change,
old data keeps its old shape, and an incompatible change touches nothing."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from decimal import Decimal

import pyarrow as pa
import pytest
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.types import IntegerType, LongType, NestedField, StringType

from infrastructure.bootstrap import bootstrap_tables, ensure_tables
from infrastructure.catalog import load_catalog
from infrastructure.migrations import IncompatibleChange, migrate
from infrastructure.tables import BRONZE_TRADES, SILVER_TRADES, TableDef
from processing.duckdb_engine import connect
from processing.maintenance import compact_hour, hour_filter, maintain_hour
from processing.query import run_query
from processing.silver.run import run_silver
from tests.fixtures.evolution import (
    ADDED_COLUMN,
    ADDED_PARTITION,
    PREVIOUS_SILVER,
    create_previous,
    current_contracts,
    under,
)
from tests.fixtures.lakehouse import BRONZE_ARROW, HOUR, T0, BronzeBuilder
from tests.fixtures.services import settings_for


def _namespace() -> str:
    return f"ev{uuid.uuid4().hex[:10]}"


def _old_silver_row(trade_id: int) -> dict:
    """A silver row as the previous release wrote it (no kafka_timestamp column)."""
    when = T0 - HOUR + timedelta(minutes=trade_id % 60)
    return {
        "exchange": "coinbase", "product_id": "BTC-USD", "trade_id": trade_id,
        "price": Decimal("100.5"), "size": Decimal("0.25"), "side": "buy",
        "event_time": when, "receive_time": when, "ingest_time": when, "ingest_latency_ms": 0,
        "sequence": None, "source": "ws", "kafka_topic": "crypto.trades", "kafka_partition": 0,
        "kafka_offset": 10_000 + trade_id,
    }  # fmt: skip


def test_new_column_reads_null_in_old_rows_and_the_past_keeps_its_schema(seaweedfs) -> None:
    settings = settings_for(seaweedfs=seaweedfs)
    catalog = load_catalog(settings)
    tables = create_previous(catalog, _namespace())
    silver = catalog.load_table(tables.silver)
    silver.append(
        pa.Table.from_pylist(
            [_old_silver_row(i) for i in (900, 901)], schema=PREVIOUS_SILVER.schema.as_arrow()
        )
    )
    before = silver.current_snapshot().snapshot_id
    contracts = current_contracts(tables)

    planned = migrate(catalog, contracts, dry_run=True)
    steps = {p.identifier: p.steps() for p in planned.plans}
    assert steps[tables.silver] == [f"add column {ADDED_COLUMN} timestamptz (optional: Kafka record time)"]
    assert steps[tables.bronze] == [f"add partition field {ADDED_PARTITION} = hour(ingest_time)"]
    assert steps[tables.rejected] == []
    assert catalog.load_table(tables.silver).schema() == silver.schema()  # a dry run changes nothing

    assert migrate(catalog, contracts).applied
    assert all(p.empty for p in migrate(catalog, contracts, dry_run=True).plans)  # idempotent
    evolved = catalog.load_table(tables.silver)
    assert (
        evolved.schema().find_field(ADDED_COLUMN).field_id
        == SILVER_TRADES.schema.find_field(ADDED_COLUMN).field_id
    )
    assert evolved.current_snapshot().snapshot_id == before  # metadata only: no data rewritten

    # the product after the upgrade: silver refines a window and fills the new column from bronze
    b = BronzeBuilder()
    fresh = [b.add(1, T0 + timedelta(minutes=1)), b.add(2, T0 + timedelta(minutes=2), product_id="ETH-USD")]
    catalog.load_table(tables.bronze).append(b.arrow())
    run_silver(settings, T0, T0 + HOUR, engine="duckdb", tables=tables)

    rows = {r["trade_id"]: r for r in catalog.load_table(tables.silver).scan().to_arrow().to_pylist()}
    assert rows[900][ADDED_COLUMN] is None and rows[901][ADDED_COLUMN] is None
    assert [rows[r["trade_id"]][ADDED_COLUMN] for r in fresh] == [r["kafka_timestamp"] for r in fresh]
    duck = (
        connect(settings)
        .execute(f"SELECT trade_id, {ADDED_COLUMN} IS NULL FROM lake.{tables.silver} ORDER BY trade_id")
        .fetchall()
    )
    assert duck == [(1, False), (2, False), (900, True), (901, True)]

    # time travel to before the change: the old schema, through pyiceberg and DuckDB
    past = catalog.load_table(tables.silver).scan(snapshot_id=before).to_arrow()
    assert ADDED_COLUMN not in past.column_names and past.num_rows == 2
    relation = run_query(settings, f"SELECT * FROM {tables.silver}", table=tables.silver, snapshot_id=before)
    assert ADDED_COLUMN not in relation.columns and len(relation.fetchall()) == 2


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda s: [*s, NestedField(99, "venue_fee", StringType(), required=True)], "venue_fee: a new column must be optional"),
        (lambda s: [f if f.name != "kafka_partition" else NestedField(f.field_id, f.name, StringType(), required=True) for f in s],
         "kafka_partition: type int -> string is not a widening"),
        (lambda s: [f for f in s if f.name != "sequence"], "sequence: in the table but not in the contract"),
        (lambda s: [f if f.name != "sequence" else NestedField(f.field_id, f.name, f.field_type, required=True) for f in s],
         "sequence: optional -> required"),
    ],
    ids=["required-new-column", "narrowing", "dropped-column", "optional-to-required"],
)  # fmt: skip
def test_an_incompatible_change_is_refused_and_no_table_is_touched(seaweedfs, change, named) -> None:

    catalog = load_catalog(settings_for(seaweedfs=seaweedfs))
    tables = create_previous(catalog, _namespace())
    catalog.load_table(tables.silver).append(
        pa.Table.from_pylist([_old_silver_row(900)], schema=PREVIOUS_SILVER.schema.as_arrow())
    )
    locations = {t: catalog.load_table(t).metadata_location for t in (tables.bronze, tables.silver)}
    bad_bronze = dataclasses.replace(BRONZE_TRADES, schema=Schema(*change(list(BRONZE_TRADES.schema.fields))))
    contracts = (under(bad_bronze, tables.bronze), under(SILVER_TRADES, tables.silver))
    with pytest.raises(IncompatibleChange, match=rf"{tables.bronze}\.{named}"):
        migrate(catalog, contracts)
    # the compatible silver change was refused with it: all or nothing
    assert {t: catalog.load_table(t).metadata_location for t in locations} == locations
    assert ADDED_COLUMN not in catalog.load_table(tables.silver).schema().column_names


def test_widening_and_docs_are_applied_in_place(seaweedfs) -> None:
    catalog = load_catalog(settings_for(seaweedfs=seaweedfs))
    namespace = _namespace()
    catalog.create_namespace_if_not_exists(namespace)
    narrow = NestedField(1, "n", IntegerType(), required=True)
    table = catalog.create_table(
        f"{namespace}.w", schema=pa.schema([pa.field("n", pa.int32(), nullable=False)])
    )
    table.append(
        pa.table(
            {"n": pa.array([1, 2], pa.int32())}, schema=pa.schema([pa.field("n", pa.int32(), nullable=False)])
        )
    )
    wide = TableDef(f"{namespace}.w", Schema(NestedField(narrow.field_id, "n", LongType(), required=False, doc="a count")),
                    PartitionSpec(), UNSORTED_SORT_ORDER, {}, "")  # fmt: skip
    (plan,) = migrate(catalog, (wide,)).plans
    assert plan.steps() == ["widen column n to long", "make column n optional", "set doc of n: a count"]
    field = catalog.load_table(f"{namespace}.w").schema().find_field("n")
    assert (field.field_type, field.required, field.doc) == (LongType(), False, "a count")
    assert catalog.load_table(f"{namespace}.w").scan().to_arrow().column("n").to_pylist() == [1, 2]


def _ingested(con, table: str, start, end) -> list[tuple]:
    return con.execute(
        f"""SELECT kafka_partition, kafka_offset, trade_id, price, ingest_time FROM lake.{table}
            WHERE ingest_time >= ? AND ingest_time < ? ORDER BY kafka_partition, kafka_offset""",
        [start, end],
    ).fetchall()


def test_partition_evolution_keeps_old_files_and_the_same_answers(seaweedfs) -> None:
    settings = settings_for(seaweedfs=seaweedfs)
    catalog = load_catalog(settings)
    tables = create_previous(catalog, _namespace())
    twin = create_previous(catalog, _namespace())  # never evolved: the answers to match
    contracts = current_contracts(tables)
    migrate(catalog, (contracts[1], under(SILVER_TRADES, twin.silver)))  # silver first: only bronze differs

    b = BronzeBuilder()
    hour_a, hour_b = T0, T0 + HOUR

    def append_hour(start) -> None:
        for batch in range(3):  # the writer commits every few seconds: several files per hour
            rows = [b.add(1000 * batch + i + int(start.timestamp()) % 100_000, start + timedelta(minutes=20 * batch + i),
                          product_id=("BTC-USD", "ETH-USD")[i % 2], partition=i % 2) for i in range(5)]  # fmt: skip
            for name in (tables.bronze, twin.bronze):
                catalog.load_table(name).append(pa.Table.from_pylist(rows, schema=BRONZE_ARROW))

    append_hour(hour_a)
    migrate(catalog, contracts)
    append_hour(hour_b)

    bronze = catalog.load_table(tables.bronze)
    assert [p.name for p in bronze.spec().fields] == ["event_day", ADDED_PARTITION]
    files = bronze.inspect.files().to_pylist()

    def specs_of(hour) -> set[int]:
        paths = {
            t.file.file_path for t in bronze.scan(row_filter=hour_filter("ingest_time", hour)).plan_files()
        }
        return {f["spec_id"] for f in files if f["file_path"] in paths}

    assert specs_of(hour_a) == {0} and specs_of(hour_b) == {1}
    assert len(files) == 6

    con = connect(settings)
    across = (hour_a + timedelta(minutes=30), hour_b + timedelta(minutes=30))
    expected = sorted(
        (r["kafka_partition"], r["kafka_offset"]) for r in b.rows if across[0] <= r["ingest_time"] < across[1]
    )
    got = _ingested(con, tables.bronze, *across)
    assert got == _ingested(con, twin.bronze, *across) and [g[:2] for g in got] == expected

    # silver over both hours reads the same from the evolved bronze as from the never-evolved one
    for window in (hour_a, hour_b):
        run_silver(settings, window, window + HOUR, engine="duckdb", tables=tables)
        run_silver(settings, window, window + HOUR, engine="duckdb", tables=twin)
    silver_sql = "SELECT * EXCLUDE (ingest_latency_ms) FROM lake.{} ORDER BY exchange, product_id, trade_id"
    assert (
        con.execute(silver_sql.format(tables.silver)).fetchall()
        == con.execute(silver_sql.format(twin.silver)).fetchall()
    )

    # compaction of an old-spec hour and hourly maintenance of a new-spec hour
    everything = (hour_a, hour_b + HOUR)
    compacted = compact_hour(bronze, hour_a, min_files=2)
    assert (compacted.rows_rewritten, compacted.files_after) == (15, 4)
    policy = settings.maintenance.model_copy(update={"compact_min_files": 2})
    hourly = maintain_hour(bronze, settings.s3, policy, now=hour_b + HOUR + timedelta(minutes=1))
    assert hourly.compaction.rows_rewritten == 15
    con = connect(settings)  # a fresh attach: the catalog's current metadata
    assert _ingested(con, tables.bronze, *everything) == _ingested(con, twin.bronze, *everything)
    assert len(_ingested(con, tables.bronze, *everything)) == len(b.rows)
    bronze.refresh()
    assert {f["spec_id"] for f in bronze.inspect.files().to_pylist()} == {
        1
    }  # rewritten with the current spec


def test_a_writer_holding_the_old_spec_keeps_appending_then_follows(seaweedfs) -> None:
    """The bronze writer keeps its table loaded and refreshes only on a conflict: an append on the
    pre-migration metadata still commits (an old-spec file, valid), and once it has re-read the
    table its files get the new spec."""
    settings = settings_for(seaweedfs=seaweedfs)
    catalog = load_catalog(settings)
    tables = create_previous(catalog, _namespace())
    writer_view = catalog.load_table(tables.bronze)
    b = BronzeBuilder()
    b.add(1, T0)
    writer_view.append(b.arrow())
    migrate(catalog, current_contracts(tables))

    b.add(2, T0 + timedelta(minutes=1))
    writer_view.append(b.arrow(b.rows[1:]))  # stale metadata: no conflict, spec 0
    writer_view.refresh()
    b.add(3, T0 + timedelta(minutes=2))
    writer_view.append(b.arrow(b.rows[2:]))
    files = catalog.load_table(tables.bronze).inspect.files().to_pylist()
    assert sorted(f["spec_id"] for f in files) == [0, 0, 1]
    assert connect(settings).execute(f"SELECT count(*) FROM lake.{tables.bronze}").fetchone() == (3,)


def test_a_job_bootstrap_logs_a_refusal_and_goes_on(seaweedfs, caplog) -> None:
    """gold and the demo bootstrap on the way in (``ensure_tables``): a refused difference is one
    warning naming the column, no table changes, and the job is not stopped; ``init`` raises."""
    catalog = load_catalog(settings_for(seaweedfs=seaweedfs))
    tables = create_previous(catalog, _namespace())
    before = catalog.load_table(tables.silver).metadata_location
    drifted = dataclasses.replace(
        SILVER_TRADES, schema=Schema(*(f for f in SILVER_TRADES.schema.fields if f.name != "sequence"))
    )
    with caplog.at_level("WARNING", logger="infrastructure.bootstrap"):
        assert ensure_tables(catalog, (under(drifted, tables.silver),)) == []
    assert f"{tables.silver}.sequence: in the table but not in the contract" in caplog.text
    assert catalog.load_table(tables.silver).metadata_location == before
    with pytest.raises(IncompatibleChange, match=rf"{tables.silver}\.sequence"):
        bootstrap_tables(catalog, (under(drifted, tables.silver),))
