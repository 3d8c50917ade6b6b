"""The ``lakehouse`` command: one entry point; every subcommand lives in a module of this package.

The rule: click commands live here and only here (one module per stage or concern); the stages
below (``ingestion/``, ``processing/``, ``quality/``, ``monitoring/``, ``infrastructure/``) are
libraries with no click in them. A command parses and validates its options, then calls the stage's
job function, the same one the Airflow task calls.

Commands are imported lazily, so ``lakehouse --help`` does not pay for pyspark, Airflow or dbt.
Add a command by adding one line to ``COMMANDS``.
"""

from __future__ import annotations

import importlib
import sys

import click

# name -> "module:attribute" of a click command
COMMANDS: dict[str, str] = {
    "settings": "orchestration.cli.stack:settings_command",
    "up": "orchestration.cli.stack:up_command",
    "down": "orchestration.cli.stack:down_command",
    "status": "orchestration.cli.stack:status_command",
    "init": "orchestration.cli.stack:init_command",
    "ingest": "orchestration.cli.ingest:ingest",
    "record": "orchestration.cli.ingest:record",
    "backfill": "orchestration.cli.ingest:backfill",
    "bronze": "orchestration.cli.bronze:bronze_command",
    "silver": "orchestration.cli.refine:silver_command",
    "completeness": "orchestration.cli.refine:completeness_command",
    "gold": "orchestration.cli.refine:gold_command",
    "quality": "orchestration.cli.refine:quality_command",
    "maintain": "orchestration.cli.refine:maintain_command",
    "query": "orchestration.cli.query:query_command",
    "snapshots": "orchestration.cli.query:snapshots_command",
    "trigger": "orchestration.cli.airflow:trigger_command",
    "demo": "orchestration.cli.demo:demo_command",
    "dashboard": "orchestration.cli.dashboard:dashboard_command",
    "docs": "orchestration.cli.docs:docs_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """lakehouse-crypto: live crypto trades -> Kafka -> Iceberg bronze/silver/gold."""


def main() -> None:
    try:
        cli(standalone_mode=True)
    except ValueError as exc:  # settings errors name the variable; no traceback for users
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
