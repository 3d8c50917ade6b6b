"""Write-audit-publish's pure parts: audit ref names and their retention, the models a publish copies
(from dbt's manifest), the audit's datasets aimed at the staged state, the key filter of a delta."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.expressions import And, EqualTo, In, Or

from processing import wap
from quality.audit import staged_datasets, staged_sql
from quality.datasets import DATASETS

pytestmark = pytest.mark.unit

H = datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_branch_names_round_trip_and_ignore_other_refs() -> None:
    assert wap.branch_name(H) == "audit-2026-12-01T10"
    assert wap.branch_hour(wap.branch_name(H)) == H
    for other in ("main", "hour-2026-12-01T10", "audit", "audit-yesterday", "published"):
        assert wap.branch_hour(other) is None


def test_only_audit_refs_past_their_retention_are_stale() -> None:
    names = [
        "main",
        "published",
        "hour-2026-11-01T00",
        *(wap.branch_name(H - timedelta(hours=h)) for h in range(5)),
    ]
    # kept 2 h after their hour closed: hours H-4..H-3 closed more than 2 h before H+1
    stale = wap.stale_audit_refs(names, H + timedelta(hours=1), timedelta(hours=2))
    assert stale == [wap.branch_name(H - timedelta(hours=4)), wap.branch_name(H - timedelta(hours=3))]


def test_gold_models_come_from_the_manifest() -> None:
    manifest = {
        "nodes": {
            "model.p.ohlcv_1m": {"resource_type": "model", "name": "ohlcv_1m",
                                 "config": {"materialized": "incremental",
                                            "unique_key": ["exchange", "product_id", "candle_start"]}},
            "model.p.daily": {"resource_type": "model", "name": "daily", "alias": "daily_metrics",
                              "config": {"materialized": "table", "unique_key": None}},
            "model.p.one_key": {"resource_type": "model", "name": "one_key",
                                "config": {"materialized": "incremental", "unique_key": "id"}},
            "model.p.stg": {"resource_type": "model", "name": "stg", "config": {"materialized": "ephemeral"}},
            "test.p.unique": {"resource_type": "test", "name": "unique", "config": {"materialized": "test"}},
        }
    }  # fmt: skip
    assert wap.gold_models(manifest) == [
        wap.GoldModel("daily_metrics", None),
        wap.GoldModel("ohlcv_1m", ("exchange", "product_id", "candle_start")),
        wap.GoldModel("one_key", ("id",)),
    ]


def test_the_audit_reads_silver_at_the_branch_heads_and_gold_from_gold_audit() -> None:
    heads = {"trades": 11, "trades_rejected": 22}
    sql = (
        "select * from lake.silver.trades as s join lake.silver.trades_rejected r on true "
        "join lake.gold.ohlcv_1m g on true join lake.bronze.trades b on true"
    )
    assert staged_sql(sql, heads) == (
        "select * from (select * from lake.silver.trades AT (VERSION => 11)) as s "
        "join (select * from lake.silver.trades_rejected AT (VERSION => 22)) r on true "
        "join lake.gold_audit.ohlcv_1m g on true join lake.bronze.trades b on true"
    )
    for dataset in staged_datasets(heads):  # every suite's SQL: no published table left in it
        assert "lake.gold." not in dataset.sql
        assert "lake.silver.trades " not in dataset.sql.replace("lake.silver.trades AT", "")
    assert len(staged_datasets(heads)) == len(DATASETS)


def test_the_key_filter_groups_by_all_but_the_last_key_column() -> None:
    keys = pa.table(
        {"exchange": ["cb", "cb", "bn"], "product_id": ["BTC", "BTC", "ETH"], "minute": [1, 2, 3]}
    )
    expected = Or(
        And(And(EqualTo("exchange", "bn"), EqualTo("product_id", "ETH")), In("minute", [3])),
        And(And(EqualTo("exchange", "cb"), EqualTo("product_id", "BTC")), In("minute", [1, 2])),
    )
    assert wap.key_filter(keys) == expected
    assert wap.key_filter(pa.table({"id": [5, 6]})) == In("id", [5, 6])


def test_the_compose_stack_does_not_stage_what_its_spark_silver_cannot_write() -> None:
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    env = compose["x-lakehouse-env"]
    assert (
        env["LAKEHOUSE_ENGINE__PROCESSING"] == "spark"
    )  # commits to main only (spark_submit refuses a branch)
    assert env["LAKEHOUSE_ORCHESTRATION__WRITE_AUDIT_PUBLISH"] == "false"
