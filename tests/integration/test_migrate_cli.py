"""``lakehouse migrate [--dry-run]`` and ``lakehouse inspect`` on a lakehouse of the previous
contracts (a SeaweedFS of its own: it evolves the contract tables themselves)."""

from __future__ import annotations

from click.testing import CliRunner
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, StringType

from infrastructure.bootstrap import ensure_tables
from infrastructure.catalog import load_catalog
from infrastructure.settings import to_environment
from orchestration.cli import cli
from orchestration.local_stack import launch_seaweedfs
from tests.fixtures.evolution import PREVIOUS_BRONZE, PREVIOUS_SILVER
from tests.fixtures.lakehouse import T0, BronzeBuilder
from tests.fixtures.services import settings_for


def test_migrate_plans_applies_refuses_and_inspect_shows_the_specs(tmp_path) -> None:
    seaweedfs = launch_seaweedfs(tmp_path)
    try:
        settings = settings_for(seaweedfs=seaweedfs)
        catalog = load_catalog(settings)
        ensure_tables(catalog, (PREVIOUS_BRONZE, PREVIOUS_SILVER))
        bronze = catalog.load_table("bronze.trades")
        b = BronzeBuilder()
        b.add(1, T0)
        bronze.append(b.arrow())
        runner = CliRunner(env=to_environment(settings))

        def run(*args: str, code: int = 0) -> str:
            result = runner.invoke(cli, list(args))
            assert result.exit_code == code, result.output
            return result.output

        locations = {t: catalog.load_table(t).metadata_location for t in ("bronze.trades", "silver.trades")}
        plan = run("migrate", "--dry-run")
        assert (
            "silver.trades: plan: add column kafka_timestamp timestamptz (optional: Kafka record time)"
            in plan
        )
        assert "bronze.trades: plan: add partition field ingest_hour = hour(ingest_time)" in plan
        assert {t: catalog.load_table(t).metadata_location for t in locations} == locations

        applied = run("migrate")
        assert "silver.trades: applied: add column kafka_timestamp" in applied
        assert run("migrate").splitlines() == ["bronze.trades: up to date", "silver.trades: up to date"]

        b.add(2, T0)  # after the change: a file of the new spec
        catalog.load_table("bronze.trades").append(b.arrow(b.rows[1:]))
        files = run("inspect", "bronze.trades", "files")
        assert "spec_id" in files and "ingest_hour=" in files and "2 rows" in files
        for view in ("history", "snapshots", "refs", "manifests", "partitions"):
            assert "rows" in run("inspect", "bronze.trades", view)
        assert "no snapshot 1" in run("inspect", "bronze.trades", "files", "--snapshot", "1", code=2)
        first = str(bronze.current_snapshot().snapshot_id)
        assert "1 rows" in run("inspect", "bronze.trades", "files", "--snapshot", first)  # before the change
        assert "applies to files and partitions only" in run(
            "inspect", "bronze.trades", "refs", "--snapshot", first, code=2
        )

        # an incompatible contract difference: silver.trades.price was a string in this table
        catalog.drop_table("silver.trades")
        fields = [f if f.name != "price" else NestedField(f.field_id, "price", StringType(), required=True)
                  for f in PREVIOUS_SILVER.schema.fields]  # fmt: skip
        catalog.create_table("silver.trades", schema=Schema(*fields))
        before = catalog.load_table("silver.trades").metadata_location
        refused = run("migrate", code=1)
        assert "refused, no table changed: silver.trades.price: type string -> decimal(38, 18)" in refused
        assert catalog.load_table("silver.trades").metadata_location == before
    finally:
        seaweedfs.stop()
