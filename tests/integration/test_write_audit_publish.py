"""Write-audit-publish on real services (SeaweedFS + its Iceberg REST catalog, dbt on DuckDB, GE):
the hourly steps as the DAG's tasks call them (silver staged -> gold into gold_audit -> audit ->
publish), hour after hour on one lakehouse of this module's own.

Checked: readers see nothing of an hour before its publish and all of it after; an hour with a bad
silver row fails its audit and leaves silver's and gold's ``main`` exactly as they were (every row
of every table compared), keeps the staged state readable, and a re-run of the hour publishes; a
crash (SIGKILL) between silver's and gold's publish leaves each table whole and the re-run publishes once;
``main`` moved under the branch (a compaction) makes the publish re-stage instead of losing either.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from infrastructure import services
from infrastructure.bootstrap import ensure_tables
from infrastructure.catalog import load_catalog
from infrastructure.settings import Settings, to_environment
from infrastructure.tables import BRONZE_TRADES, SILVER_TRADES, SILVER_TRADES_REJECTED
from infrastructure.times import Window
from processing import wap
from processing.duckdb_engine import connect
from processing.gold import gold_job
from processing.query import run_query
from processing.silver.run import silver_job
from quality import audit
from tests.fixtures.lakehouse import BronzeBuilder
from tests.fixtures.services import launch_seaweedfs, settings_for

pytestmark = pytest.mark.integration

H0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
PRODUCTS = ("BTC-USD", "ETH-USD")
SILVER = (SILVER_TRADES.identifier, SILVER_TRADES_REJECTED.identifier)


@dataclass(frozen=True)
class Lake:
    settings: Settings
    bronze: BronzeBuilder


def hour(n: int) -> Window:
    return Window(H0 + timedelta(hours=n), H0 + timedelta(hours=n + 1))


def add_hour(lake: Lake, n: int, first_id: int) -> None:
    """Two products x 2 minutes x 3 trades ingested in hour ``n``, one invalid (rejected) row."""
    rows = []
    for minute in range(2):
        for p, product in enumerate(PRODUCTS):
            for k in range(3):
                trade_id = first_id + minute * 10 + p * 3 + k
                ingest = hour(n).start + timedelta(minutes=minute, seconds=5 * k + 1)
                rows.append(
                    lake.bronze.add(
                        trade_id, ingest, product_id=product, price=f"{100 + trade_id % 7}.{k}5",
                        size=f"0.{k + 1}0", side="buy" if k % 2 else "sell", partition=p,
                    )
                )  # fmt: skip
    rows.append(lake.bronze.add(first_id + 99, hour(n).start + timedelta(minutes=3), price="-1"))
    table = load_catalog(lake.settings).load_table(BRONZE_TRADES.identifier)
    table.append(pa.Table.from_pylist(rows, schema=BRONZE_TRADES.schema.as_arrow()))


def write_and_audit(lake: Lake, n: int):
    """silver -> gold -> audit for hour ``n`` (staged, as the hourly DAG runs them)."""
    silver_job(lake.settings, hour(n), staged=True)
    # no late-data lookback: an hour's build then touches only its own minutes, which shows that a
    # publish copies what the build changed, not the table
    built = gold_job(lake.settings, hour(n).end, staged_hour=hour(n).start, lookback_hours=0)
    assert built.success, built.summary()
    return audit.audit_job(lake.settings, hour(n))


def published(settings: Settings) -> dict[str, list[tuple]]:
    """Every row readers see: silver's main and every gold.* table."""
    catalog = load_catalog(settings)
    tables = [*SILVER, *(f"gold.{name}" for _ns, name in catalog.list_tables("gold"))]
    con = connect(settings)
    try:
        return {t: sorted(con.execute(f"select * from lake.{t}").fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def main_snapshots(settings: Settings) -> dict[str, int | None]:
    catalog = load_catalog(settings)
    tables = [*SILVER, *(f"gold.{name}" for _ns, name in catalog.list_tables("gold"))]
    return {t: getattr(catalog.load_table(t).current_snapshot(), "snapshot_id", None) for t in tables}


def candle_counts(settings: Settings, namespace: str = "gold") -> dict[tuple, int]:
    rows = run_query(
        settings, f"select product_id, candle_start, trade_count from lake.{namespace}.ohlcv_1m"
    ).fetchall()
    return {(p, s.astimezone(UTC)): n for p, s, n in rows}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    seaweedfs = launch_seaweedfs(tmp_path_factory.mktemp("wap-seaweedfs"))
    try:
        settings = settings_for(
            seaweedfs=seaweedfs,
            data_dir=tmp_path_factory.mktemp("wap-data"),
            products=list(PRODUCTS),
            metrics={"pushgateway_url": f"http://127.0.0.1:{services.free_port()}"},
        )
        ensure_tables(load_catalog(settings))
        yield Lake(settings, BronzeBuilder())
    finally:
        seaweedfs.stop()


@pytest.fixture(scope="module")
def first_hour(lake: Lake) -> dict[str, list[tuple]]:
    """Hour 0 written and audited (not yet published): what readers saw before, and the result."""
    add_hour(lake, 0, 1000)
    before = published(lake.settings)
    result = write_and_audit(lake, 0)
    assert result.success, result.summary()
    return before


def test_a_clean_hour_is_invisible_until_published(lake: Lake, first_hour) -> None:
    settings = lake.settings
    assert published(settings) == first_hour  # staged and audited, still nothing for readers
    branch = wap.branch_name(hour(0).start)
    staged = run_query(settings, "select count(*) from silver.trades", table="silver.trades", ref=branch)
    assert staged.fetchone() == (12,)
    assert sum(candle_counts(settings, wap.AUDIT_NAMESPACE).values()) == 12

    result = audit.publish_hour(settings, hour(0))
    assert set(result.silver.values()) == {"published"}, result.summary()
    now = published(settings)
    assert len(now[SILVER_TRADES.identifier]) == 12 and len(now[SILVER_TRADES_REJECTED.identifier]) == 1
    assert candle_counts(settings) == candle_counts(settings, wap.AUDIT_NAMESPACE)
    assert sum(candle_counts(settings).values()) == 12 and len(candle_counts(settings)) == 4
    catalog = load_catalog(settings)
    for identifier in SILVER:  # the branch is gone: nothing accumulates per hour
        assert wap.audit_refs(catalog.load_table(identifier)) == []
    for model in wap.audit_tables(catalog):  # nor the hour's tag of the shadow tables
        assert wap.audit_refs(catalog.load_table(f"{wap.AUDIT_NAMESPACE}.{model}")) == []

    again = audit.publish_hour(settings, hour(0))  # idempotent: nothing left to publish
    assert set(again.silver.values()) == {"nothing staged"}
    assert set(again.gold.values()) <= {"unchanged", "not built"}
    assert published(settings) == now


def test_a_failed_audit_leaves_main_exactly_as_it_was(lake: Lake, first_hour) -> None:
    settings = lake.settings
    audit.publish_hour(settings, hour(0))  # (published by the test before, if it ran)
    add_hour(lake, 1, 2000)
    before, snapshots = published(settings), main_snapshots(settings)
    silver_job(settings, hour(1), staged=True)
    # a row silver's suite rejects (unknown product) slipped into the staged hour
    catalog = load_catalog(settings)
    table = catalog.load_table(SILVER_TRADES.identifier)
    branch = wap.branch_name(hour(1).start)
    template = dict(zip(SILVER_TRADES.schema.column_names, before[SILVER_TRADES.identifier][0], strict=True))
    template.update(product_id="XRP-USD", trade_id=999_999, kafka_offset=99_999,
                    ingest_time=hour(1).start + timedelta(minutes=5))  # fmt: skip
    table.append(pa.Table.from_pylist([template], schema=SILVER_TRADES.schema.as_arrow()), branch=branch)
    built = gold_job(settings, hour(1).end, staged_hour=hour(1).start, lookback_hours=0)
    assert built.success, built.summary()
    result = audit.audit_job(settings, hour(1))

    assert not result.success
    assert (
        "expect_column_values_to_be_in_set(column=product_id" in result.summary()
        and "XRP-USD" in result.summary()
    )
    assert published(settings) == before and main_snapshots(settings) == snapshots
    # the staged state stays for inspection: silver's branch, gold_audit under the hour's tag
    staged = run_query(
        settings, "select count(*) from silver.trades where product_id = 'XRP-USD'",
        table="silver.trades", ref=branch,
    ).fetchone()  # fmt: skip
    assert staged == (1,)
    xrp = run_query(
        settings, "select count(*) from gold_audit.ohlcv_1m where product_id = 'XRP-USD'",
        table="gold_audit.ohlcv_1m", ref=branch,
    ).fetchone()  # fmt: skip
    assert xrp == (1,)

    # the next run of the hour re-stages from main (the stray row is gone) and publishes
    rerun = write_and_audit(lake, 1)
    assert rerun.success, rerun.summary()
    result = audit.publish_hour(settings, hour(1))
    assert result.gold["ohlcv_1m"] == "published 4 rows", result.summary()  # the hour's 4 candles of 8
    now = published(settings)
    assert len(now[SILVER_TRADES.identifier]) == 24
    assert sum(candle_counts(settings).values()) == 24
    assert candle_counts(settings) == candle_counts(settings, wap.AUDIT_NAMESPACE)
    assert not any(p == "XRP-USD" for p, _ in candle_counts(settings))


KILLED_PUBLISH = """
import os, signal, sys
from infrastructure.settings import get_settings
from infrastructure.times import Window
from processing import wap
from quality import audit

wap.publish_gold = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)  # dies after silver's
audit.publish_hour(get_settings(), Window.parse(sys.argv[1], sys.argv[2]))
"""


def test_a_crash_between_silver_and_gold_publish_then_the_rerun_publishes_once(
    lake: Lake, first_hour
) -> None:
    settings = lake.settings
    add_hour(lake, 2, 3000)
    assert write_and_audit(lake, 2).success
    gold_before = {t: rows for t, rows in published(settings).items() if t.startswith("gold.")}

    env = {**os.environ, **to_environment(settings), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    window = hour(2)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_PUBLISH, window.start.isoformat(), window.end.isoformat()],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    middle = published(settings)
    assert len(middle[SILVER_TRADES.identifier]) == 36  # silver published whole
    assert {t: r for t, r in middle.items() if t.startswith("gold.")} == gold_before  # gold whole, not yet

    catalog = load_catalog(settings)
    commits_before = {t: len(catalog.load_table(t).snapshots()) for t in gold_before}
    result = audit.publish_hour(settings, hour(2))
    assert set(result.silver.values()) == {"nothing staged"}
    assert sum(candle_counts(settings).values()) == 36
    assert candle_counts(settings) == candle_counts(settings, wap.AUDIT_NAMESPACE)
    after_once = published(settings)
    commits_once = {t: len(load_catalog(settings).load_table(t).snapshots()) for t in gold_before}
    assert all(commits_once[t] >= commits_before[t] for t in gold_before)
    # once: a further publish commits nothing
    audit.publish_hour(settings, hour(2))
    assert published(settings) == after_once
    assert {t: len(load_catalog(settings).load_table(t).snapshots()) for t in gold_before} == commits_once


def test_main_moved_under_the_branch_is_restaged_not_lost(lake: Lake, first_hour) -> None:
    settings = lake.settings
    add_hour(lake, 3, 4000)
    assert write_and_audit(lake, 3).success
    # a maintenance-style rewrite of silver's main after staging: same rows, a new snapshot
    table = load_catalog(settings).load_table(SILVER_TRADES.identifier)
    rows = table.scan().to_arrow()
    table.overwrite(rows)
    moved = table.refresh().current_snapshot().snapshot_id
    result = audit.publish_hour(settings, hour(3))
    assert result.restaged == 1, result.summary()
    table = load_catalog(settings).load_table(SILVER_TRADES.identifier)
    assert moved in wap.ancestors(table, table.current_snapshot().snapshot_id)  # never backwards
    now = published(settings)
    assert len(now[SILVER_TRADES.identifier]) == 48
    assert sum(candle_counts(settings).values()) == 48


def stage_with_stray_row(lake: Lake, n: int) -> None:
    """Hour ``n`` staged with a row silver's suite rejects (unknown product) on its audit branch."""
    settings = lake.settings
    silver_job(settings, hour(n), staged=True)
    table = load_catalog(settings).load_table(SILVER_TRADES.identifier)
    row = table.scan(limit=1).to_arrow().to_pylist()[0]
    row.update(product_id="XRP-USD", trade_id=888_888 + n, kafka_offset=88_888 + n,
               ingest_time=hour(n).start + timedelta(minutes=5))  # fmt: skip
    stray = pa.Table.from_pylist([row], schema=SILVER_TRADES.schema.as_arrow())
    table.append(stray, branch=wap.branch_name(hour(n).start))
    assert gold_job(settings, hour(n).end, staged_hour=hour(n).start, lookback_hours=0).success


def test_publish_and_discard_by_hand(lake: Lake, first_hour) -> None:
    from click.testing import CliRunner

    from orchestration.cli import cli

    settings = lake.settings
    runner = CliRunner(env=to_environment(settings))
    add_hour(lake, 4, 5000)
    stage_with_stray_row(lake, 4)
    before, stamp = published(settings), hour(4).start.strftime("%Y-%m-%dT%H:00")

    audited = runner.invoke(cli, ["audit", stamp])
    assert audited.exit_code == 1 and "silver_trades: FAILED" in audited.output
    refused = runner.invoke(cli, ["publish", stamp])
    assert refused.exit_code != 0 and "failed: nothing published" in refused.output
    assert published(settings) == before

    discarded = runner.invoke(cli, ["discard", stamp], catch_exceptions=False)
    assert discarded.exit_code == 0 and "silver.trades" in discarded.output
    catalog = load_catalog(settings)
    assert all(wap.audit_refs(catalog.load_table(t)) == [] for t in SILVER)
    gone = runner.invoke(cli, ["audit", stamp])  # nothing staged any more: a clear refusal
    assert isinstance(gone.exception, wap.NotStaged) and "has no branch 'audit-" in str(gone.exception)
    assert published(settings) == before

    silver_job(settings, hour(4), staged=True)
    assert gold_job(settings, hour(4).end, staged_hour=hour(4).start, lookback_hours=0).success
    done = runner.invoke(cli, ["publish", stamp], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "silver.trades: published" in done.output
    assert len(published(settings)[SILVER_TRADES.identifier]) == 60
    bad = runner.invoke(cli, ["publish", "2026-11-20T10:30"])
    assert bad.exit_code == 2 and "not the start of an hour" in bad.output


def test_maintenance_keeps_a_staged_hour_then_drops_it_when_stale(lake: Lake, first_hour) -> None:
    from processing import maintenance

    settings = lake.settings
    add_hour(lake, 5, 6000)
    silver_job(settings, hour(5), staged=True)
    catalog = load_catalog(settings)
    branch = wap.branch_name(hour(5).start)
    published_rows = len(published(settings)[SILVER_TRADES.identifier])
    policy = settings.maintenance.model_copy(update={"retain_last_snapshots": 2})
    now = hour(5).end + timedelta(minutes=5)

    result = maintenance.maintain_hour(catalog.load_table(SILVER_TRADES.identifier), settings.s3, policy, now)
    assert result.expiry.snapshots_after < result.expiry.snapshots_before  # expiry ran, sparing the branch
    assert result.tags.audit_refs_removed == [] and result.stats.audit_refs == 1  # the gauge shows it
    staged = run_query(settings, "select count(*) from silver.trades", table="silver.trades", ref=branch)
    assert staged.fetchone() == (published_rows + 12,)

    later = now + timedelta(hours=policy.audit_ref_retention_hours + 1)
    result = maintenance.maintain_hour(
        catalog.load_table(SILVER_TRADES.identifier), settings.s3, policy, later
    )
    assert result.tags.audit_refs_removed == [branch] and result.stats.audit_refs == 0
    table = catalog.load_table(SILVER_TRADES.identifier)
    assert branch not in table.metadata.refs
    assert len(published(settings)[SILVER_TRADES.identifier]) == published_rows  # main untouched
