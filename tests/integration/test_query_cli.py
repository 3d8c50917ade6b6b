"""``lakehouse query`` (now and as of a snapshot id or a time) and ``lakehouse snapshots`` on real services."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pyarrow as pa
from click.testing import CliRunner

from infrastructure.catalog import load_catalog
from infrastructure.settings import to_environment
from orchestration.cli import cli
from tests.fixtures.services import settings_for


def test_query_snapshots_and_time_travel(broker, seaweedfs) -> None:
    settings = settings_for(broker, seaweedfs)
    catalog = load_catalog(settings)
    catalog.create_namespace_if_not_exists("scratch")
    name = f"scratch.tt_{uuid.uuid4().hex[:8]}"
    table = catalog.create_table(name, schema=pa.schema([("n", pa.int64())]))
    table.append(pa.table({"n": [1, 2, 3]}), snapshot_properties={"note": "first"})
    first = table.current_snapshot()
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    table.append(pa.table({"n": [10, 20]}))

    runner = CliRunner(env=to_environment(settings))

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    now = run("query", f"SELECT count(*) AS n, sum(n) AS total FROM lake.{name}")
    assert "5" in now and "36" in now

    past = run(
        "query",
        "--table",
        name,
        "--as-of-snapshot",
        str(first.snapshot_id),
        f"SELECT sum(n) AS total FROM {name}",
    )
    assert "6" in past and "36" not in past

    stamp = between.strftime("%Y-%m-%d %H:%M:%S.%f")
    by_time = run("query", "--table", name, "--as-of", stamp, f"SELECT sum(n) AS total FROM {name}")
    assert "6" in by_time and "36" not in by_time

    with table.manage_snapshots() as refs:  # a tag as the hourly retention makes one, and a branch
        refs.create_tag(first.snapshot_id, "hour-2026-12-01T10").create_branch(first.snapshot_id, "audit")
    at_tag = run(
        "query", "--table", name, "--ref", "hour-2026-12-01T10", f"SELECT sum(n) AS total FROM {name}"
    )
    assert "6" in at_tag and "36" not in at_tag
    table.append(pa.table({"n": [100]}), branch="audit")  # a commit only the branch sees
    at_branch = run("query", "--table", name, "--ref", "audit", f"SELECT sum(n) AS total FROM {name}")
    assert "106" in at_branch and "36" not in at_branch
    assert "36" in run("query", f"SELECT sum(n) AS total FROM lake.{name}")  # main does not see it
    unknown = runner.invoke(cli, ["query", "--table", name, "--ref", "nope", "SELECT 1"])
    assert (
        unknown.exit_code == 2 and "no branch or tag 'nope'" in unknown.output and "audit" in unknown.output
    )
    both = runner.invoke(
        cli, ["query", "--table", name, "--ref", "audit", "--as-of-snapshot", "1", "SELECT 1"]
    )
    assert both.exit_code == 2 and "give one of" in both.output

    listed = run("snapshots", name)
    assert str(first.snapshot_id) in listed and "note = first" in listed and "append" in listed

    money = "SELECT CAST('0.100000000000000001' AS DECIMAL(38, 18)) AS price, 2 AS n, NULL AS none"
    assert run("query", "--format", "csv", money) == "price,n,none\n0.100000000000000001,2,\n"
    assert run("query", "--format", "json", money).split() == (
        ["[", "{", '"price":', '"0.100000000000000001",', '"n":', "2,", '"none":', "null", "}", "]"]
    )

    refused = runner.invoke(cli, ["query", "--as-of-snapshot", "1", "SELECT 1"])
    assert refused.exit_code != 0 and "--table" in refused.output
