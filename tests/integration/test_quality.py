"""``run_quality`` over the gold test lakehouse: a consistent window passes and is kept as JSON; a
window where a bronze row never reached silver fails, naming the expectation. Without a Pushgateway
the run warns and still succeeds; ``lakehouse quality`` pushes its run to a real one and exits 1 on a
failed suite."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from infrastructure import services, supervisor
from infrastructure.catalog import load_catalog
from infrastructure.services import free_port
from orchestration.cli import cli
from quality.checks import run_quality
from tests.fixtures.gold import DAY_START, SPAN, RawTrade, append_bronze
from tests.fixtures.monitoring import gateway_samples, monitoring_settings
from tests.fixtures.services import cli_environment


def test_a_consistent_window_passes_and_is_kept(gold_lakehouse) -> None:
    settings = gold_lakehouse.settings.model_copy(
        update={
            "metrics": gold_lakehouse.settings.metrics.model_copy(
                update={"pushgateway_url": f"http://127.0.0.1:{free_port()}"}
            )
        }
    )
    result = run_quality(settings, DAY_START, DAY_START + SPAN + timedelta(hours=2))
    assert result.success, result.summary()
    by_suite = {s.suite: s for s in result.suites}
    assert set(by_suite) == {
        "silver_trades",
        "gold_ohlcv_1m",
        "gold_ohlcv_1h",
        "reconciliation",
        "gold_price_deviation_1m",
    }
    assert by_suite["silver_trades"].rows == len(
        {(t.product_id, t.trade_id) for t in gold_lakehouse.raw if t.winner and not t.reject_reason}
    )
    assert all(s.evaluated > 0 and s.failed == 0 for s in result.suites)
    kept = json.loads(result.results_file.read_text())
    assert result.results_file.parent == settings.data_dir / "quality"
    assert kept["success"] is True and len(kept["validations"]) == 5


def test_a_bronze_row_that_never_reached_silver_fails_reconciliation(gold_lakehouse) -> None:
    settings = gold_lakehouse.settings
    window_start = DAY_START + timedelta(days=30)  # a window of its own: other tests' data untouched
    lost = RawTrade(
        "BTC-USD",
        999_999,
        "65000.5",
        "0.1",
        "buy",
        window_start,
        window_start + timedelta(seconds=1),
        winner=False,
    )
    append_bronze(load_catalog(settings), [lost], first_offset=10_000_000)  # silver never runs
    result = run_quality(settings, window_start, window_start + timedelta(hours=1))
    assert not result.success
    recon = next(s for s in result.suites if s.suite == "reconciliation")
    assert not recon.success
    assert any("lost_rows" in f and "1" in f for f in recon.failures), recon.failures
    assert "reconciliation: FAILED" in result.summary()


def test_the_quality_command_pushes_its_run_and_fails_on_a_failed_suite(
    gold_lakehouse, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, paths = monitoring_settings(tmp_path / "stack")
    gateway = supervisor.pushgateway_service(stack, paths)
    assert gateway, "prometheus-pushgateway missing: run make setup"
    settings = gold_lakehouse.settings.model_copy(update={"metrics": stack.metrics})
    window_start = DAY_START + timedelta(days=40)  # a window of its own, as above
    lost = RawTrade("ETH-USD", 999_998, "3000.25", "0.5", "sell", window_start,
                    window_start + timedelta(seconds=1), winner=False)  # fmt: skip
    append_bronze(load_catalog(settings), [lost], first_offset=20_000_000)
    proc = services.start(gateway.spec)
    try:
        services.wait_ready(gateway.spec, proc, 30)
        with cli_environment(settings, monkeypatch, tmp_path):
            good_end = DAY_START + SPAN + timedelta(hours=2)
            good = CliRunner().invoke(
                cli, ["quality", "--start", DAY_START.isoformat(), "--end", good_end.isoformat()]
            )
            assert good.exit_code == 0, good.output
            after_good = gateway_samples(settings, "quality")
            bad_end = window_start + timedelta(hours=1)
            bad = CliRunner().invoke(
                cli, ["quality", "--start", window_start.isoformat(), "--end", bad_end.isoformat()]
            )
            after_bad = gateway_samples(settings, "quality")
    finally:
        services.stop(proc.pid)
    assert after_good[("lakehouse_job_last_success", "")] == 1
    assert after_good[("lakehouse_job_rows", "suites")] == 5
    assert after_good[("lakehouse_job_rows", "suites_failed")] == 0
    assert after_good[("lakehouse_job_window_end_timestamp_seconds", "")] == good_end.timestamp()
    assert bad.exit_code == 1 and "reconciliation: FAILED" in bad.output, bad.output
    assert after_bad[("lakehouse_job_last_success", "")] == 0
    assert after_bad[("lakehouse_job_rows", "suites_failed")] == 1
    # the failed window is not processed: the last good run's window end stays
    assert after_bad[("lakehouse_job_window_end_timestamp_seconds", "")] == good_end.timestamp()
