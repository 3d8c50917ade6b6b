"""The pyiceberg 0.12 workaround: one metadata replay per transaction state, same commits, and only
on the versions it was measured on. Runs on pyiceberg's SQLite catalog in a temporary folder."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField

from infrastructure import iceberg_compat


@pytest.fixture
def table(tmp_path):
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}")
    catalog.create_namespace("ns")
    return catalog.create_table("ns.t", Schema(NestedField(1, "n", LongType(), required=False)))


def test_only_measured_versions_are_patched() -> None:
    assert iceberg_compat.cache_transaction_metadata("0.13.0") is False
    assert iceberg_compat.cache_transaction_metadata("0.12.0") is True and iceberg_compat.is_installed()


def test_reads_replay_once_per_state_and_commits_are_unchanged(table, monkeypatch) -> None:
    assert iceberg_compat.cache_transaction_metadata("0.12.0")
    calls = []
    replay = iceberg_compat.update_table_metadata
    monkeypatch.setattr(iceberg_compat, "update_table_metadata", lambda *a: calls.append(1) or replay(*a))

    tx = table.transaction()
    first = tx.table_metadata
    assert all(tx.table_metadata is first for _ in range(10)) and len(calls) == 1
    tx.set_properties({"k": "v"})  # staging replaces the updates tuple: the next read replays
    assert tx.table_metadata.properties["k"] == "v" and len(calls) == 2
    tx.append(pa.table({"n": pa.array([1, 2, 3], pa.int64())}))
    tx.commit_transaction()
    assert table.properties["k"] == "v"
    assert sorted(table.scan().to_arrow()["n"].to_pylist()) == [1, 2, 3]
    table.append(pa.table({"n": pa.array([4], pa.int64())}))  # a fresh transaction sees the new base
    assert len(table.snapshots()) == 2 and table.scan().to_arrow().num_rows == 4
