"""The pure parts of the gold runner: dbt's command line, its environment, run_results digests and
`dbt show` output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infrastructure.settings import Settings
from processing.gold import DBT_PROJECT_DIR, dbt_command, dbt_environment, show_rows, summarize


def settings(**values) -> Settings:
    return Settings(
        _env_file=None, s3={"access_key": "k", "secret_key": "s"}, data_dir=Path("/tmp/lh"), **values
    )


def test_target_follows_the_query_engine() -> None:
    assert dbt_command(settings())[dbt_command(settings()).index("--target") + 1] == "duckdb"
    trino = dbt_command(settings(engine={"query": "trino"}), full_refresh=True, lookback_hours=6)
    assert trino[trino.index("--target") + 1] == "trino"
    assert "--full-refresh" in trino
    assert trino[trino.index("--vars") + 1] == '{"late_data_lookback_hours": 6}'
    assert trino[trino.index("--project-dir") + 1] == str(DBT_PROJECT_DIR)
    assert trino[trino.index("--target-path") + 1] == "/tmp/lh/dbt/target"


def test_profile_variables_come_from_settings() -> None:
    env = dbt_environment(settings(catalog={"uri": "http://127.0.0.1:1"}))
    assert env["LAKEHOUSE_CATALOG__URI"] == "http://127.0.0.1:1"
    assert env["LAKEHOUSE_CATALOG__CREDENTIAL"] == "k:s"  # SeaweedFS: the S3 key pair
    profile = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    for name in env:
        assert f"env_var('{name}'" in profile, name


def test_failures_are_named_with_their_message() -> None:
    statuses, failures = summarize(
        {
            "results": [
                {"unique_id": "model.lakehouse_gold.ohlcv_1m", "status": "success", "message": "OK"},
                {"unique_id": "test.lakehouse_gold.unique_x", "status": "fail", "message": "Got 3 results"},
                {"unique_id": "model.lakehouse_gold.y", "status": "error", "message": None},
            ]
        }
    )
    assert statuses == {"success": 1, "fail": 1, "error": 1}
    assert failures == ["test.lakehouse_gold.unique_x: Got 3 results", "model.lakehouse_gold.y: error"]


def test_show_rows_reads_dbts_json_log_and_says_when_there_are_none() -> None:
    rows = [{"exchange": "coinbase", "product_id": "BTC-USD", "max_abs_return_1m": 0.01}]
    lines = [
        json.dumps({"info": {"code": "A001", "msg": "Running with dbt"}, "data": {}}),
        "not json: a warning printed by a library",
        json.dumps({"info": {"code": "Q041"}, "data": {"preview": json.dumps(rows)}}),
    ]
    assert show_rows("\n".join(lines)) == rows
    with pytest.raises(ValueError, match="no rows event"):
        show_rows("\n".join(lines[:2]))
