"""Maintenance commits keep the writer's offsets and the log resets it recorded (they travel together)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog

from processing.bronze.progress import offsets_properties
from processing.bronze.resets import RESETS_PROPERTY, Reset, encode_resets, table_resets
from processing.bronze.rows import OFFSETS_PROPERTY, encode_offsets


def test_offsets_properties_carry_the_resets(tmp_path: Path) -> None:
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=f"file://{tmp_path}")
    catalog.create_namespace("ns")
    table = catalog.create_table("ns.t", pa.schema([("n", pa.int64())]))
    reset = Reset("crypto.trades", 0, 500, 0, 150, 500, "2026-12-01T00:00:00+00:00")
    offsets = {("crypto.trades", 0): 150}
    table.append(
        pa.table({"n": [1]}),
        snapshot_properties={
            OFFSETS_PROPERTY: encode_offsets(offsets),
            RESETS_PROPERTY: encode_resets([reset]),
        },
    )
    # a maintenance commit on top, carrying what offsets_properties gives it
    table.append(pa.table({"n": [2]}), snapshot_properties=offsets_properties(table))
    newest = table.current_snapshot().summary.additional_properties
    assert newest[OFFSETS_PROPERTY] == encode_offsets(offsets)
    assert newest[RESETS_PROPERTY] == encode_resets([reset])
    assert table_resets(table) == [reset]
