"""``lakehouse demo`` (``make demo``): the whole embedded pipeline on this machine, with a live summary.

Brings the stack up (with Airflow), bootstraps topics and tables, runs ingestion (``lakehouse
ingest --source auto``: live Coinbase, else the synthetic source), the reference-price poller
(``--source auto --venue coingecko``: CoinGecko, else its synthetic twin) and one bronze writer per
stream (trades, reference prices) as child processes, serves the dashboard page (in this process, until the demo ends), prints where to look,
then a summary line every few seconds (and, if ingestion fell back to synthetic trades, says so:
they are venue ``exchange = 'synthetic'``, with trade ids that start at the run's start time in
microseconds, so a second demo adds new trades and never mixes with real Coinbase ones) until
Ctrl-C (or ``--duration``), and stops its children (the
writer flushes). Then the full cycle: the ``crypto_hourly`` DAG is triggered in Airflow for the
current hour, its silver, gold and quality tasks are followed to the end (bounded), and candles
from ``lake.gold.ohlcv_1m`` are printed through ``lakehouse query``'s path. The stack itself keeps running (``lakehouse down`` stops it).
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import click

from infrastructure.services import ServiceSpec, scrape_gauge, venv_bin
from infrastructure.settings import Settings
from infrastructure.watchdog import supervised

SUMMARY_EVERY_S = 5.0
DRAIN_TIMEOUT_S = 120.0
HOURLY_RUN_TIMEOUT_S = 900.0  # a catch-up run or two may go first (max_active_runs=1)
CANDLES_SQL = (
    "SELECT exchange, product_id, candle_start, open, high, low, close, volume, trade_count "
    "FROM lake.gold.ohlcv_1m ORDER BY candle_start DESC, exchange, product_id LIMIT 12"
)


@dataclass(frozen=True)
class Child:
    name: str
    spec: ServiceSpec


def children(settings: Settings, source: str) -> list[Child]:
    """The demo's worker processes, logged under ``<data_dir>/logs/`` like the services."""
    logs = settings.data_dir / "logs"
    # reference prices beside the trades: CoinGecko, or its synthetic twin when it is unreachable
    reference = "synthetic" if source == "synthetic" else "auto"
    commands = {
        "ingest": ("ingest", "--source", source),
        "ingest-reference": ("ingest", "--source", reference, "--venue", "coingecko"),
        "bronze": ("bronze",),
        "bronze-reference": ("bronze", "--stream", "reference_prices"),
    }
    return [
        Child(
            name,
            supervised(  # restarted after a crash, restarts counted for `lakehouse status`
                ServiceSpec(
                    name=name,
                    argv=(venv_bin("lakehouse"), *args),
                    log_file=logs / f"{name}.log",
                    cwd=Path.cwd(),
                    host=settings.stack.host,
                    ready_ports=(),
                ),
                settings.data_dir / "run",
            ),
        )
        for name, args in commands.items()
    ]


def where_to_look(settings: Settings, credentials_file: Path) -> str:
    m, host = settings.metrics, settings.stack.host
    return "\n".join(
        (
            f"  S3 endpoint      {settings.s3.endpoint}  (bucket {settings.s3.warehouse_bucket})",
            f"  Iceberg catalog  {settings.catalog.uri}  (warehouse {settings.catalog.warehouse})",
            f"  Kafka            {settings.kafka.bootstrap_servers}  (topic {settings.kafka.trades_topic},"
            f" DLQ {settings.kafka.dlq_topic})",
            f"  metrics          http://{m.host}:{m.producer_port}/metrics (ingest)"
            f"  http://{m.host}:{m.bronze_port}/metrics (bronze)",
            f"  Prometheus       http://{host}:{settings.stack.prometheus_port}"
            f"  (batch runs via the Pushgateway {m.pushgateway_url})",
            f"  dashboard        http://{host}:{m.dashboard_port}/  (served while the demo runs; then `lakehouse dashboard`)",
            f"  Airflow          http://{host}:{settings.stack.airflow_port}  (user admin, password in"
            f" {settings.data_dir / 'airflow' / 'passwords.json'})",
            f"  credentials      {credentials_file}",
            f"  logs             {settings.data_dir / 'logs'}",
            '  try              lakehouse query "SELECT product_id, count(*) FROM lake.bronze.trades GROUP BY 1"',
        )
    )


class LogFollower:
    """The whole lines a child appended to its log since the last call (from the size it had when
    this was made: the log is appended to across runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new_lines(self) -> list[str]:
        try:
            with self.path.open("rb") as log:
                log.seek(self.offset)
                data = log.read()
        except FileNotFoundError:
            return []
        whole = data.rfind(b"\n") + 1
        self.offset += whole
        return data[:whole].decode("utf-8", errors="replace").splitlines()


def format_summary(trades_per_s: float, bronze_rows: int, freshness_s: float | None) -> str:
    fresh = "n/a" if freshness_s is None or freshness_s != freshness_s else f"{freshness_s:.1f} s"
    return f"trades/s {trades_per_s:8.1f}   rows in bronze {bronze_rows:>10,}   bronze freshness {fresh}"


class Probe:
    """Reads the numbers for the summary line: topic high watermarks and bronze's row count."""

    def __init__(self, settings: Settings) -> None:
        from infrastructure.catalog import load_catalog
        from infrastructure.tables import BRONZE_TRADES
        from processing.bronze.progress import TopicEnds

        self.topic = TopicEnds(settings.kafka, settings.kafka.trades_topic, "lakehouse-demo-probe")
        self.table = load_catalog(settings).load_table(BRONZE_TRADES.identifier)

    def messages_in_topic(self) -> int:
        return sum(self.topic.ends(timeout_s=5).values())

    def bronze_rows(self) -> int:
        snapshot = self.table.refresh().current_snapshot()
        if snapshot is None or snapshot.summary is None:
            return 0
        return int(snapshot.summary.additional_properties.get("total-records", 0))

    def close(self) -> None:
        self.topic.close()


def start_dashboard(settings: Settings) -> str | None:
    """Serve the dashboard page from a daemon thread of this process; its URL, or None (with a note)
    if its port is taken (a ``lakehouse dashboard`` already running serves the same page)."""
    from monitoring.dashboard.server import make_server

    try:
        server = make_server(settings)
    except OSError as exc:
        click.echo(
            f"dashboard: not started ({exc}); `lakehouse dashboard --port N` serves it elsewhere", err=True
        )
        return None
    threading.Thread(target=server.serve_forever, name="dashboard", daemon=True).start()
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def drain(settings: Settings, probe: Probe) -> None:
    """Wait (bounded) until bronze records everything now in the trades topic."""
    from processing.bronze.progress import wait_until_written

    try:
        wait_until_written(probe.table, settings.kafka, DRAIN_TIMEOUT_S)
        click.echo("bronze: everything in the topic is written")
    except TimeoutError as exc:
        click.echo(f"bronze: not drained after {DRAIN_TIMEOUT_S:.0f} s ({exc})", err=True)


def hourly_cycle(settings: Settings) -> bool:
    """Run ``crypto_hourly`` in Airflow for the current hour, follow its tasks, print candles."""
    from datetime import UTC, datetime

    from orchestration.api import AirflowApiError, AirflowClient
    from processing.query import run_query

    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    try:
        client = AirflowClient.login(settings)
        run_id = client.trigger("crypto_hourly", hour=hour)
        click.echo(f"airflow: triggered crypto_hourly for {hour:%Y-%m-%d %H:00}..+1h UTC: run {run_id}")
        state = client.wait(
            "crypto_hourly", run_id, HOURLY_RUN_TIMEOUT_S, lambda t: click.echo(f"  tasks: {t}")
        )
    except AirflowApiError as exc:
        click.echo(f"airflow: {exc}", err=True)
        return False
    click.echo(f"airflow: crypto_hourly run {run_id}: {state}")
    if state != "success":
        click.echo(f"  see the task logs under {settings.data_dir / 'airflow' / 'logs'}", err=True)
        return False
    click.echo(f'gold candles (lakehouse query "{CANDLES_SQL}"):')
    run_query(settings, CANDLES_SQL).show(max_rows=12, max_width=200)
    return True


@click.command("demo")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: Ctrl-C).")
@click.option(
    "--source", default="auto", show_default=True, help="Ingestion source: auto | coinbase | synthetic."
)
def demo_command(duration: float | None, source: str) -> None:
    """Run the embedded pipeline (stack with Airflow, ingestion, bronze writer) with a live summary,
    then the hourly DAG for the current hour and its candles."""
    from infrastructure import services, supervisor
    from infrastructure.bootstrap import ensure_tables, ensure_topics
    from infrastructure.catalog import load_catalog
    from infrastructure.services import ServiceStartError
    from infrastructure.settings import load_settings
    from ingestion.runner import FALLBACK_NOTICE, REFERENCE_FALLBACK_NOTICE

    try:
        settings, _ = supervisor.up(load_settings(), log=click.echo, airflow=True)
    except ServiceStartError as exc:
        raise click.ClickException(str(exc)) from None
    created = ensure_topics(settings.kafka) + ensure_tables(load_catalog(settings))
    click.echo(f"bootstrap: created {', '.join(created)}" if created else "bootstrap: nothing to create")

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    procs = []
    probe = None
    workers = children(settings, source)
    ingest_logs = {c.name: LogFollower(c.spec.log_file) for c in workers if c.name.startswith("ingest")}

    def relay_fallback() -> None:  # the user must see it if the trades (or reference prices) are synthetic
        for name, log in ingest_logs.items():
            for line in log.new_lines():
                if line.startswith((FALLBACK_NOTICE, REFERENCE_FALLBACK_NOTICE)):
                    click.echo(f"{name}: {line}")

    dashboard_url = start_dashboard(settings)
    if dashboard_url:
        click.echo(f"dashboard: {dashboard_url}")
    try:
        for child in workers:
            procs.append((child, services.start(child.spec)))
            click.echo(f"{child.name}: started (log: {child.spec.log_file})")
        click.echo(
            "where to look:\n" + where_to_look(settings, supervisor.StackPaths(settings.data_dir).credentials)
        )
        click.echo(
            "live summary every 5 s; Ctrl-C to stop" if duration is None else f"running for {duration:.0f} s"
        )
        probe = Probe(settings)
        deadline = None if duration is None else time.monotonic() + duration
        metrics_url = f"http://{settings.metrics.host}:{settings.metrics.bronze_port}/metrics"
        last_count, last_time = probe.messages_in_topic(), time.monotonic()
        while not stop.wait(
            SUMMARY_EVERY_S
            if deadline is None
            else max(0.0, min(SUMMARY_EVERY_S, deadline - time.monotonic()))
        ):
            for child, proc in procs:
                if proc.poll() is not None:
                    raise click.ClickException(
                        f"{child.name} exited with code {proc.returncode}; see {child.spec.log_file}"
                    )
            count, now = probe.messages_in_topic(), time.monotonic()
            rate = (count - last_count) / max(now - last_time, 1e-9)
            last_count, last_time = count, now
            relay_fallback()
            freshness = scrape_gauge(metrics_url, "lakehouse_bronze_freshness_seconds")
            click.echo(format_summary(rate, probe.bronze_rows(), freshness))
            if deadline is not None and now >= deadline:
                break
    finally:
        # ingest first, then the writer once it has written what ingest sent (bounded): a demo that
        # stops leaves nothing in Kafka that bronze does not hold
        for child, proc in sorted(procs, key=lambda cp: cp[0].name != "ingest"):
            if child.name == "bronze" and probe is not None and proc.poll() is None:
                drain(settings, probe)
            services.stop(proc.pid, timeout_s=30)
            proc.wait(timeout=5)
            click.echo(f"{child.name}: stopped")
        if probe is not None:
            click.echo(f"bronze now holds {probe.bronze_rows():,} rows")
            probe.close()
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C ends the cycle below
        signal.signal(sig, signal.SIG_DFL if sig == signal.SIGTERM else signal.default_int_handler)
    ok = hourly_cycle(settings)
    click.echo("the stack keeps running (`lakehouse down` stops it)")
    if not ok:
        raise SystemExit(1)
