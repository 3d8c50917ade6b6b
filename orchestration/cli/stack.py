"""``lakehouse up`` / ``down`` / ``status`` / ``init`` / ``settings``: the stack from the command line."""

from __future__ import annotations

import sys

import click

from infrastructure.settings import load_settings


@click.command("up")
@click.option(
    "--airflow", is_flag=True, help="Also start Airflow 3 (api-server, scheduler, dag-processor, triggerer)."
)
def up_command(airflow: bool) -> None:
    """Start the embedded stack (Kafka broker, SeaweedFS S3 + Iceberg catalog, Prometheus); idempotent."""
    from infrastructure import supervisor
    from infrastructure.services import ServiceStartError

    try:
        _settings, started = supervisor.up(load_settings(), log=click.echo, airflow=airflow)
    except ServiceStartError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo("started: " + ", ".join(started) if started else "everything was already running")
    _print_status()


@click.command("down")
def down_command() -> None:
    """Stop the services `lakehouse up` started; data stays under the data folder."""
    from infrastructure import supervisor

    stopped = supervisor.down(load_settings(), log=click.echo)
    click.echo("stopped: " + ", ".join(stopped) if stopped else "nothing was running")


@click.command("status")
def status_command() -> None:
    """Show each embedded service as healthy / unhealthy / down, with its URL. Exit 1 if any is not healthy."""
    if not _print_status():
        sys.exit(1)


def _print_status() -> bool:
    from infrastructure import supervisor

    states = supervisor.status(load_settings())
    for s in states:
        pid = f"pid {s.pid}" if s.pid else ""
        click.echo(f"{s.name:<21} {s.state:<10} {pid:<11} {s.url}  {s.detail()}".rstrip())
    return all(s.state == "healthy" for s in states)


@click.command("init")
def init_command() -> None:
    """Create the Kafka topics, namespaces and Iceberg tables that are missing, and migrate existing
    tables to their contracts (compatible changes only, as `lakehouse migrate`); idempotent."""
    from infrastructure.bootstrap import bootstrap_tables, check_broker, ensure_topics
    from infrastructure.catalog import load_catalog
    from infrastructure.migrations import IncompatibleChange
    from orchestration.cli.tables import echo_migration

    settings = load_settings()
    check_broker(settings.kafka)
    topics = ensure_topics(settings.kafka)
    try:
        tables, migration = bootstrap_tables(load_catalog(settings))
    except IncompatibleChange as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"topics created: {', '.join(topics)}" if topics else "topics: nothing to create")
    click.echo(f"tables created: {', '.join(tables)}" if tables else "tables: nothing to create")
    echo_migration(migration.changed(), applied=True)


@click.command("settings")
@click.option("--sources", is_flag=True, help="One line per variable: its value and where it came from.")
def settings_command(sources: bool) -> None:
    """Print the effective settings (secrets masked); with --sources, where each value came from
    (environment, .env, the credentials file, or default)."""
    from infrastructure.settings import setting_sources

    settings = load_settings()
    if not sources:
        click.echo(settings.model_dump_json(indent=2))
        return
    rows = setting_sources(settings)
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        click.echo(f"{name:<{width}}  {value:<40}  {source}")
