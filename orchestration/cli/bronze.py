"""``lakehouse bronze``: run the streaming bronze writer (``processing/bronze/``) until Ctrl-C / SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading

import click


@click.command("bronze")
@click.option(
    "--stream",
    type=click.Choice(("trades", "reference_prices")),
    default="trades",
    show_default=True,
    help="trades: the trades topic -> bronze.trades; reference_prices: the reference topic -> "
    "bronze.reference_prices (run one writer process per stream).",
)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option(
    "--idle-exit", type=float, default=None, help="Stop when no message arrived for this many seconds."
)
@click.option("--no-metrics", is_flag=True, help="Do not serve the Prometheus endpoint.")
@click.option(
    "--instance-id", default=None, help="Static group member id (default: settings.bronze.instance_id)."
)
@click.option("--debug", is_flag=True, help="Log full tracebacks of retried errors [settings.debug].")
@click.option(
    "--crash-after-commits",
    type=int,
    default=None,
    hidden=True,
    help="Tests only: SIGKILL self after the Nth table commit, before the consumer-group commit.",
)
def bronze_command(
    stream: str,
    duration: float | None,
    idle_exit: float | None,
    no_metrics: bool,
    instance_id: str | None,
    debug: bool,
    crash_after_commits: int | None,
) -> None:
    """Consume a topic into its bronze table, exactly once (offsets live in the table)."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    from infrastructure.settings import load_settings
    from processing.bronze.streams import STREAMS
    from processing.bronze.writer import run_writer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    settings = load_settings()
    if debug:
        settings = settings.model_copy(update={"debug": True})
    if instance_id is not None:
        settings = settings.model_copy(
            update={"bronze": settings.bronze.model_copy(update={"instance_id": instance_id})}
        )
    try:
        writer = run_writer(
            settings,
            stop=stop,
            crash_after_commits=crash_after_commits,
            idle_exit_s=idle_exit,
            serve_metrics=not no_metrics,
            stream=STREAMS[stream],
        )
    except (NoSuchTableError, NoSuchNamespaceError):
        raise click.ClickException(
            f"{STREAMS[stream].identifier} does not exist yet: run `lakehouse init` first"
        ) from None
    click.echo(f"bronze writer stopped after {writer.commits} commits")
