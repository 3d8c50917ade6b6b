"""Gold: run the dbt project (``processing/dbt``) for the current stack and summarize the outcome.

The target follows ``settings.engine.query``: ``duckdb`` (embedded; gold is written as Iceberg
tables through DuckDB's catalog attachment) or ``trino`` (compose). dbt runs as a child process:
its profile reads endpoints and credentials from ``LAKEHOUSE_*`` variables, which are built here
from the Settings object (never from this process's environment), and its logs and artifacts go
under ``<data_dir>/dbt`` rather than into the source tree.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

from infrastructure.job_metrics import run_and_push
from infrastructure.services import venv_bin
from infrastructure.settings import ENV_PREFIX, Settings

log = logging.getLogger(__name__)
JOB = "gold"

DBT_PROJECT_DIR = Path(__file__).resolve().parent / "dbt"
# statuses dbt writes to run_results.json that mean something is wrong
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})


@dataclass(frozen=True)
class GoldResult:
    target: str
    success: bool
    seconds: float
    statuses: dict[str, int]  # dbt status -> number of nodes (models, tests, unit tests)
    failures: list[str] = field(default_factory=list)  # "node: message" for each failed node
    run_results: Path | None = None

    def metric_counts(self) -> dict[str, int]:
        """dbt nodes by status for the run's pushed metrics (``lakehouse_job_rows{kind=...}``)."""
        return dict(self.statuses)

    def summary(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.statuses.items()))
        head = f"dbt build --target {self.target}: {'OK' if self.success else 'FAILED'} in {self.seconds:.1f}s ({counts})"
        return "\n".join([head, *(f"  - {f}" for f in self.failures)])


def dbt_environment(settings: Settings) -> dict[str, str]:
    """The ``LAKEHOUSE_*`` variables ``profiles.yml`` reads, from the settings object."""
    key, secret = settings.s3.credentials()
    values = {
        "S3__ENDPOINT": settings.s3.endpoint,
        "S3__REGION": settings.s3.region,
        "S3__ACCESS_KEY": key,
        "S3__SECRET_KEY": secret,
        "CATALOG__URI": settings.catalog.uri,
        "CATALOG__WAREHOUSE": settings.catalog.warehouse,
        "CATALOG__CREDENTIAL": settings.catalog_credential(),
        "TRINO__HOST": settings.trino.host,
        "TRINO__PORT": str(settings.trino.port),
        "TRINO__USER": settings.trino.user,
        "TRINO__CATALOG": settings.trino.catalog,
    }
    return {f"{ENV_PREFIX}{name}": value for name, value in values.items()}


def dbt_command(
    settings: Settings,
    command: str = "build",
    *,
    target_path: Path | None = None,
    full_refresh: bool = False,
    select: str | None = None,
    lookback_hours: int | None = None,
    variables: dict | None = None,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """The dbt command line for this stack (pure: no I/O). ``command`` may be two words
    (``docs generate``); artifacts go to ``target_path`` (default ``<data_dir>/dbt/target``)."""
    work = settings.data_dir.resolve() / "dbt"  # dbt resolves relative paths from the project
    args = [
        venv_bin("dbt"),
        *command.split(),
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target",
        settings.engine.query,
        "--target-path",
        str(target_path.resolve() if target_path is not None else work / "target"),
        "--log-path",
        str(work / "logs"),
    ]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    values = {
        **(variables or {}),
        **({"late_data_lookback_hours": lookback_hours} if lookback_hours is not None else {}),
    }
    if values:
        args += ["--vars", json.dumps(values)]
    return args + list(extra)


def summarize(run_results: dict) -> tuple[dict[str, int], list[str]]:
    """Status counts and readable failures from dbt's ``run_results.json``."""
    statuses = Counter(r["status"] for r in run_results.get("results", []))
    failures = [
        f"{r['unique_id']}: {(r.get('message') or r['status']).strip()}"
        for r in run_results.get("results", [])
        if r["status"] in FAILED_STATUSES
    ]
    return dict(statuses), failures


def _dbt_env(settings: Settings) -> dict[str, str]:
    return {
        "PATH": str(Path(venv_bin("dbt")).parent),
        "HOME": str(settings.data_dir.resolve()),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
        **dbt_environment(settings),
    }


def compile_offline(settings: Settings) -> subprocess.CompletedProcess:
    """``dbt compile`` for ``settings.engine.query`` without touching the warehouse (no cache, no
    introspection): how CI proves the Trino target compiles with no Trino server."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    args = dbt_command(settings, "compile", extra=("--no-populate-cache", "--no-introspect"))
    return subprocess.run(args, env=_dbt_env(settings), capture_output=True, text=True, check=False)


DBT_OUTPUT_KEPT_LINES = 200  # of a streamed run: enough for the failure message, bounded


def _run_dbt(args: list[str], env: dict[str, str], on_line: Callable[[str], None] | None) -> tuple[int, str]:
    """Run dbt; return its exit code and output (streamed through ``on_line`` if given)."""
    if on_line is None:
        proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout + proc.stderr
    kept: deque[str] = deque(maxlen=DBT_OUTPUT_KEPT_LINES)
    with subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            on_line(line.rstrip("\n"))
            kept.append(line)
    return proc.returncode, "".join(kept)


class DbtDocsError(RuntimeError):
    """``dbt docs generate`` failed; the message has dbt's last lines."""


def generate_docs(settings: Settings, out_dir: Path) -> Path:
    """``dbt docs generate`` for the current stack into ``out_dir``: dbt's ``index.html`` with the
    ``manifest.json`` and ``catalog.json`` it reads (the catalog needs the warehouse: stack up).
    Returns the index page."""
    from infrastructure.bootstrap import ensure_tables
    from infrastructure.catalog import load_catalog

    ensure_tables(load_catalog(settings))  # sources documented even before the first gold build
    out_dir.mkdir(parents=True, exist_ok=True)
    for artifact in ("index.html", "catalog.json", "manifest.json"):
        (out_dir / artifact).unlink(missing_ok=True)  # a failed run must not leave the last one's
    proc = subprocess.run(
        dbt_command(settings, "docs generate", target_path=out_dir),
        env=_dbt_env(settings), capture_output=True, text=True, check=False,
    )  # fmt: skip
    index = out_dir / "index.html"
    if proc.returncode != 0 or not index.is_file() or not (out_dir / "catalog.json").is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise DbtDocsError(f"dbt docs generate exited {proc.returncode}:\n{tail}")
    return index


def run_gold(
    settings: Settings,
    *,
    full_refresh: bool = False,
    select: str | None = None,
    lookback_hours: int | None = None,
    on_line: Callable[[str], None] | None = None,
    staged_hour: datetime | None = None,
) -> GoldResult:
    """``dbt build`` (models, data tests and unit tests) for the current stack.

    Makes sure the source tables exist first (an empty lakehouse builds empty gold tables).
    ``on_line`` sees each line dbt prints as it prints it (its per-model START / OK lines).
    ``staged_hour``: write-audit-publish (``processing/wap.py``): build into ``gold_audit`` from the
    hour's audit branches of silver, after bringing ``gold_audit`` in step with ``gold``.
    """
    from infrastructure.bootstrap import ensure_tables
    from infrastructure.catalog import load_catalog

    catalog = load_catalog(settings)
    ensure_tables(catalog)  # the same catalog seam serves both stacks
    variables = _staged_variables(catalog, staged_hour) if staged_hour is not None else None
    args = dbt_command(
        settings, full_refresh=full_refresh, select=select, lookback_hours=lookback_hours, variables=variables
    )
    env = _dbt_env(settings)
    results_file = settings.data_dir.resolve() / "dbt" / "target" / "run_results.json"
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.unlink(missing_ok=True)
    started = time.monotonic()
    returncode, output = _run_dbt(args, env, on_line)
    seconds = time.monotonic() - started
    if not results_file.is_file():  # dbt stopped before running anything (bad profile, parse error)
        tail = "\n".join(output.strip().splitlines()[-15:])
        return GoldResult(settings.engine.query, False, seconds, {}, [f"dbt exited {returncode}: {tail}"])
    statuses, failures = summarize(json.loads(results_file.read_text()))
    success = returncode == 0 and not failures
    if not success and not failures:
        failures = [f"dbt exited {returncode}: " + output.strip()[-2000:]]
    result = GoldResult(settings.engine.query, success, seconds, statuses, failures, results_file)
    if staged_hour is not None:
        from processing import wap

        wap.mark_built(catalog, staged_hour, wap.audit_tables(catalog))
    log.info("%s", result.summary())
    return result


def _staged_variables(catalog, hour: datetime) -> dict:
    """dbt vars of a staged build: silver at the hour's audit-branch heads, models into gold_audit."""
    from processing import wap

    heads = wap.staged_snapshots(catalog, hour)
    wap.prepare_gold_audit(catalog, hour, wap.audit_tables(catalog))
    return {
        "silver_snapshots": {
            identifier.partition(".")[2]: snapshot for identifier, snapshot in heads.items()
        },
        "gold_schema": wap.AUDIT_NAMESPACE,
    }


# What the alert rules read from gold (monitoring/prometheus/rules/lakehouse.yml). Pushed with the
# run's own metrics rather than served by an exporter over gold: gold only changes when a build
# commits, so a push after each build is exactly as fresh, needs no long-running process or query
# load per scrape, and lands atomically with lakehouse_job_last_success (GoldStale covers a gold that
# stopped). Read as a dbt query so one code path serves both targets (dbt's adapter for DuckDB or Trino).
ALERT_FACTS_SQL = "select * from {{ ref('market_alert_facts') }}"
SHOW_EVENT = "Q041"  # dbt's ShowNode event: the rows of `dbt show`


def show_rows(stdout: str) -> list[dict]:
    """The rows of ``dbt show --output json --log-format json`` (pure: parses dbt's JSON log lines)."""
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("info", {}).get("code") == SHOW_EVENT:
            return json.loads(event["data"]["preview"])
    raise ValueError("dbt show printed no rows event")


def alert_facts(settings: Settings) -> list[dict]:
    """``gold.market_alert_facts``: one row per (exchange, product_id), read through dbt."""
    args = dbt_command(
        settings, "show",
        extra=("--inline", ALERT_FACTS_SQL, "--output", "json", "--log-format", "json", "--limit", "-1",
               "--no-populate-cache"),
    )  # fmt: skip
    proc = subprocess.run(args, env=_dbt_env(settings), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise RuntimeError(f"dbt show exited {proc.returncode}: {tail}")
    return show_rows(proc.stdout)


def market_gauges(facts: list[dict], registry: CollectorRegistry) -> None:
    """Gauges of the alert facts in ``registry`` (pure). Labels are exchange and product only (plus
    a two-valued window/quantile): a bounded set, whatever the data."""
    labels = ["exchange", "product"]
    moves = Gauge(
        "lakehouse_gold_abs_return_max_ratio",
        "Largest |close - open| / open of a 1-minute candle or 5-minute bucket in the product's newest hour of gold",
        [*labels, "window"], registry=registry,
    )  # fmt: skip
    latency = Gauge(
        "lakehouse_gold_ingest_latency_seconds",
        "Worst minute's ingestion latency quantile (bronze ingest - exchange time) in the product's newest hour of gold",
        [*labels, "quantile"], registry=registry,
    )  # fmt: skip
    deviation = Gauge(
        "lakehouse_gold_reference_deviation_bps",
        "|VWAP - reference| / reference of the product's 1-minute candles in gold's newest hour, in basis points: "
        "the largest (stat=max) and the one exceeded in at least deviation_sustained_minutes minutes (stat=sustained)",
        [*labels, "stat"], registry=registry,
    )  # fmt: skip
    newest = Gauge(
        "lakehouse_gold_newest_candle_timestamp_seconds",
        "Start of the product's newest 1-minute candle in gold",
        labels, registry=registry,
    )  # fmt: skip
    for row in facts:
        key = (row["exchange"], row["product_id"])
        for window in ("1m", "5m"):
            if row[f"max_abs_return_{window}"] is not None:
                moves.labels(*key, window).set(float(row[f"max_abs_return_{window}"]))
        for quantile, column in (("0.95", "latency_p95_ms"), ("0.99", "latency_p99_ms")):
            if row[column] is not None:
                latency.labels(*key, quantile).set(row[column] / 1000)
        for stat, column in (("max", "max_abs_deviation_bps"), ("sustained", "sustained_deviation_bps")):
            if row.get(column) is not None:  # no reference price for this venue's product: no series
                deviation.labels(*key, stat).set(float(row[column]))
        newest.labels(*key).set(datetime.fromisoformat(row["newest_candle"]).timestamp())


def _push_market_gauges(settings: Settings, result: GoldResult, registry: CollectorRegistry) -> None:
    """After a successful build, the alert facts join the run's push; reading them must never fail
    the gold run (the rules then see the previous run's values and GoldStale catches a stuck gold)."""
    if not result.success:
        return
    try:
        market_gauges(alert_facts(settings), registry)
    except (RuntimeError, ValueError, KeyError, OSError) as exc:
        log.warning("gold alert facts not pushed: %s", exc)


def gold_job(
    settings: Settings,
    window_end: datetime | None = None,
    *,
    full_refresh: bool = False,
    select: str | None = None,
    lookback_hours: int | None = None,
    on_line: Callable[[str], None] | None = None,
    staged_hour: datetime | None = None,
) -> GoldResult:
    """One gold build pushed as job ``gold``; ``window_end`` is the hour it brings gold up to, if any
    (``staged_hour``: into ``gold_audit``, see ``run_gold``)."""
    return run_and_push(
        settings, JOB, lambda: run_gold(settings, full_refresh=full_refresh, select=select,
                                        lookback_hours=lookback_hours, on_line=on_line, staged_hour=staged_hour),
        GoldResult.metric_counts, window_end, lambda result, registry: _push_market_gauges(settings, result, registry),
    )  # fmt: skip
