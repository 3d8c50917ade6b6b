"""``lakehouse gold --verbose`` streams dbt's per-model lines; ``lakehouse silver`` prints its counts per step."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestration.cli import cli
from tests.fixtures.services import cli_environment, launch_seaweedfs, settings_for


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    seaweedfs = launch_seaweedfs(tmp_path / "seaweedfs")  # its own: gold's dbt tests see only this
    try:
        with cli_environment(settings_for(seaweedfs=seaweedfs, data_dir=tmp_path / "data"), monkeypatch,
                             tmp_path) as settings:  # fmt: skip
            yield settings
    finally:
        seaweedfs.stop()


def test_gold_verbose_streams_dbt_and_silver_prints_its_steps(environment) -> None:
    runner = CliRunner()
    gold = runner.invoke(cli, ["gold", "--verbose", "--select", "ohlcv_1m"])
    assert gold.exit_code == 0, gold.output
    lines = gold.output.splitlines()
    assert any("START sql" in line and "ohlcv_1m" in line for line in lines), gold.output
    assert any("OK created sql" in line and "ohlcv_1m" in line for line in lines), gold.output
    assert lines[-1].startswith("dbt build --target duckdb: OK")
    quiet = runner.invoke(cli, ["gold", "--select", "ohlcv_1m"])
    assert quiet.exit_code == 0 and len(quiet.output.splitlines()) == 1, quiet.output

    silver = runner.invoke(cli, ["silver", "--start", "2001-01-01T00:00", "--end", "2001-01-01T01:00"])
    assert silver.exit_code == 0, silver.output
    # the trades' summary, its steps, then the reference prices' summary
    assert [line.split()[:2] for line in silver.output.splitlines()[1:]] == [
        ["1", "read"],
        ["2", "validate"],
        ["3", "deduplicate"],
        ["4", "merge"],
        ["silver", "reference"],
    ]
