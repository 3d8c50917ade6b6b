"""The Trino target of the gold project compiles with no Trino server (what the compose stack runs)."""

from __future__ import annotations

from pathlib import Path

from processing.gold import compile_offline
from tests.fixtures.services import settings_for


def test_trino_target_compiles_offline(tmp_path: Path) -> None:
    settings = settings_for(
        data_dir=tmp_path, engine={"query": "trino"}, s3={"access_key": "k", "secret_key": "s"}
    )
    proc = compile_offline(settings)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    compiled = tmp_path / "dbt" / "target" / "compiled" / "lakehouse_gold" / "models" / "marts"
    ohlcv = (compiled / "ohlcv_1m.sql").read_text()
    # Trino SQL from the cross-database macros, not DuckDB's
    assert "date_add('minute', 1, candle_start)" in ohlcv
    assert '"iceberg"."silver"."trades"' in ohlcv
    assert "hugeint" not in ohlcv  # DuckDB's exact division stays in its dispatch
    assert "approx_percentile(ingest_latency_ms, 0.99)" in (compiled / "ingestion_latency_1m.sql").read_text()
    deviation = (compiled / "price_deviation_1m.sql").read_text()
    assert '"iceberg"."silver"."reference_prices"' in deviation
    assert "max_by(r.price, r.event_time)" in deviation and "hugeint" not in deviation
    assert "date_add('second', -120, c.candle_end)" in deviation  # the staleness bound
