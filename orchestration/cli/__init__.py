"""The ``lakehouse`` command: one entry point; every subcommand lives in a module of this package.

The rule: click commands live here and only here (one module per stage or concern); the stages
below (``ingestion/``, ``processing/``, ``quality/``, ``monitoring/``, ``infrastructure/``) are
libraries with no click in them. A command parses and validates its options, then calls the stage's
job function, the same one the Airflow task calls.

Commands are imported lazily, so ``lakehouse --help`` does not pay for pyspark, Airflow or dbt.
Add a command by adding one line to ``COMMANDS``.

``main()`` is the one error boundary (``orchestration/cli/errors.py``): whatever a command raises
becomes one line naming what failed, where, and the command that fixes it, exit code 1; usage
errors stay click's, exit 2; ``--debug`` (a root option) shows the traceback instead. librdkafka's
own log lines are kept out of the terminal unless ``--debug``: the commands check the broker once
and say what is wrong themselves.
"""

from __future__ import annotations

import importlib
import logging
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
    "migrate": "orchestration.cli.tables:migrate_command",
    "inspect": "orchestration.cli.tables:inspect_command",
    "audit": "orchestration.cli.wap:audit_command",
    "publish": "orchestration.cli.wap:publish_command",
    "discard": "orchestration.cli.wap:discard_command",
    "trigger": "orchestration.cli.airflow:trigger_command",
    "demo": "orchestration.cli.demo:demo_command",
    "dashboard": "orchestration.cli.dashboard:dashboard_command",
    "logs": "orchestration.cli.logs:logs_command",
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
@click.version_option(package_name="lakehouse-crypto", prog_name="lakehouse")
@click.option("--debug", is_flag=True, help="Show tracebacks and librdkafka's log lines.")
def cli(debug: bool) -> None:
    """lakehouse-crypto: live crypto trades -> Kafka -> Iceberg bronze/silver/gold."""
    from infrastructure.kafka import KAFKA_LOGGER

    # librdkafka repeats a line per retry while a broker is away. On a terminal its lines are kept
    # out (the commands check the broker once and say what is wrong in one line); in a log file
    # (services, the demo's workers) warnings stay, at most one per interval with a count.
    kafka_log = logging.getLogger(KAFKA_LOGGER)
    if debug:
        kafka_log.setLevel(logging.DEBUG)
    elif sys.stderr.isatty():
        kafka_log.setLevel(logging.CRITICAL)
    else:
        from ingestion.pipeline import EveryInterval

        kafka_log.setLevel(logging.WARNING)
        if not any(isinstance(f, OnePerInterval) for f in kafka_log.filters):  # once per process
            kafka_log.addFilter(OnePerInterval(EveryInterval(KAFKA_LOG_EVERY_S)))
    _options["debug"] = debug


_options = {"debug": False}
KAFKA_LOG_EVERY_S = 30.0


class OnePerInterval(logging.Filter):
    """Passes a record when its gate allows, noting how many were held back since the last one."""

    def __init__(self, gate) -> None:
        super().__init__()
        self.gate = gate

    def filter(self, record: logging.LogRecord) -> bool:
        held = self.gate.allow()
        if held is None:
            return False
        if held:
            record.msg = f"{record.getMessage()} ({held} more lines like it not logged)"
            record.args = None
        return True  # root options main() needs once the command has raised


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; any exception a command raises becomes one ``error:`` line and exit code 1."""
    args = sys.argv[1:] if argv is None else argv
    try:
        code = cli.main(args, prog_name="lakehouse", standalone_mode=False)
    except click.UsageError as exc:  # exit 2, with click's usage lines
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # a command's own one-line error
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if _options["debug"]:
            raise
        click.echo(f"error: {_describe(exc)}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)  # --version / --help return 0 here


def _describe(exc: BaseException) -> str:
    from orchestration.cli.errors import describe

    try:
        from infrastructure.settings import get_settings

        settings = get_settings()
    except Exception:  # the settings themselves may be what failed
        settings = None
    return describe(exc, settings)


if __name__ == "__main__":
    main()
