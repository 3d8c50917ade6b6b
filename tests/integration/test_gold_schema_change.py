"""An incremental gold model whose columns grew (``on_schema_change='append_new_columns'``): a table
built by the previous model gains the new columns in place on the next incremental run, rows it
does not re-aggregate read NULL there, and no full refresh is needed."""

from __future__ import annotations

from infrastructure.bootstrap import ensure_tables
from infrastructure.catalog import load_catalog
from orchestration.local_stack import launch_seaweedfs
from processing.duckdb_engine import connect
from processing.gold import run_gold
from tests.fixtures.gold import append_batch, trade_batches
from tests.fixtures.services import settings_for

NEW_COLUMNS = ("kafka_wait_p95_ms", "kafka_wait_max_ms")


def test_an_older_gold_table_gains_the_new_columns_incrementally(tmp_path) -> None:
    seaweedfs = launch_seaweedfs(tmp_path / "seaweedfs")  # its own: gold must see only these trades
    try:
        settings = settings_for(
            seaweedfs=seaweedfs, data_dir=tmp_path / "data", products=["BTC-USD", "DOGE-USD"]
        )
        catalog = load_catalog(settings)
        ensure_tables(catalog)
        first, late = trade_batches()
        append_batch(settings, first, first_offset=0)
        assert run_gold(settings).success
        latency = catalog.load_table("gold.ingestion_latency_1m")
        with latency.update_schema() as schema:  # the table as the model before kafka_wait_* built it
            for column in NEW_COLUMNS:
                schema.delete_column(column)
        rows_before = latency.scan().to_arrow().num_rows

        append_batch(settings, late, first_offset=len(first))
        result = run_gold(settings)
        assert result.success, result.summary()

        evolved = catalog.load_table("gold.ingestion_latency_1m")
        assert set(NEW_COLUMNS) <= set(evolved.schema().column_names)
        con = connect(settings)
        filled, empty, total = con.execute(
            "SELECT count(kafka_wait_max_ms), count(*) - count(kafka_wait_max_ms), count(*)"
            " FROM lake.gold.ingestion_latency_1m"
        ).fetchone()
        late_minutes = {(t.product_id, t.event_time.replace(second=0, microsecond=0)) for t in late}
        # the re-aggregated minutes (at least every minute a late trade landed in) have the new
        # figures; the rest kept their rows from the first build, NULL in the new columns
        assert filled >= len(late_minutes) and empty > 0 and total >= rows_before
    finally:
        seaweedfs.stop()
