"""The ``lakehouse`` command: one entry point, each subcommand owned by its stage's module.

Commands are imported lazily, so ``lakehouse --help`` does not pay for pyspark, Airflow or dbt.
Add a command by adding one line to ``COMMANDS``.
"""

from __future__ import annotations

import importlib
import sys

import click

# name -> "module:attribute" of a click command
COMMANDS: dict[str, str] = {
    "settings": "infrastructure.cli:show_settings",
    "ingest": "ingestion.cli:ingest",
    "record": "ingestion.cli:record",
    "backfill": "ingestion.cli:backfill",
    "silver": "processing.silver.cli:silver",
    "gold": "processing.gold:gold_command",
    "quality": "quality.checks:quality_command",
    "up": "infrastructure.stack_cli:up_command",
    "down": "infrastructure.stack_cli:down_command",
    "status": "infrastructure.stack_cli:status_command",
    "init": "infrastructure.stack_cli:init_command",
    "demo": "infrastructure.demo:demo_command",
    "bronze": "processing.bronze.cli:bronze_command",
    "query": "processing.query:query_command",
    "snapshots": "processing.query:snapshots_command",
    "trigger": "orchestration.api:trigger_command",
    "dashboard": "monitoring.dashboard.cli:dashboard_command",
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


@click.command("settings")
def show_settings() -> None:
    """Print the effective settings (secrets masked) and where they came from."""
    from infrastructure.settings import get_settings

    click.echo(get_settings().model_dump_json(indent=2))


def main() -> None:
    try:
        cli(standalone_mode=True)
    except ValueError as exc:  # settings errors name the variable; no traceback for users
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
