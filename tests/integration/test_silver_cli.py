"""``lakehouse silver`` end to end: the DuckDB engine against real services, and the Spark engine's
clear refusal where Spark has no Iceberg runtime (pip's pyspark, i.e. anywhere but the compose stack)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from infrastructure.bootstrap import ensure_tables
from infrastructure.catalog import load_catalog
from orchestration.cli import cli
from tests.fixtures.services import cli_environment, settings_for


@pytest.fixture
def environment(seaweedfs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The CLI reads its settings from the environment, like a user's shell."""
    with cli_environment(
        settings_for(seaweedfs=seaweedfs, data_dir=tmp_path), monkeypatch, tmp_path
    ) as settings:
        yield settings


def test_silver_command_refines_a_window_with_duckdb(environment) -> None:
    ensure_tables(load_catalog(environment))
    # a window long before any test's data: the command runs the whole path and changes nothing
    result = CliRunner().invoke(cli, ["silver", "--start", "2001-01-01T00:00", "--end", "2001-01-01T01:00"])
    assert result.exit_code == 0, result.output
    assert "silver [2001-01-01T00:00:00+00:00, 2001-01-01T01:00:00+00:00) with duckdb: 0 bronze rows" in (
        result.output
    )
    assert (
        "silver reference prices [2001-01-01T00:00:00+00:00, 2001-01-01T01:00:00+00:00): 0 bronze rows"
        in (result.output)
    )


def test_spark_engine_says_it_needs_the_compose_stack(environment) -> None:
    result = CliRunner().invoke(
        cli, ["silver", "--start", "2001-01-01T00:00", "--end", "2001-01-01T01:00", "--engine", "spark"]
    )
    assert result.exit_code == 1
    assert "needs the compose stack" in result.output and "Iceberg runtime" in result.output
