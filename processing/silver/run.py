"""``run_silver``: refine one bronze window into silver with the configured engine; ``silver_job``: the
same as one pushed job run, the entry point both the CLI and the Airflow task call.

Engines are imported lazily: the DuckDB one needs no JVM, the Spark one is launched through
``spark-submit``.
"""

from __future__ import annotations

from datetime import datetime

from infrastructure.job_metrics import run_and_push
from infrastructure.settings import Settings
from infrastructure.times import Window
from processing.silver.result import CONTRACT_TABLES, Engine, SilverResult, SilverTables

JOB = "silver"


def run_silver(
    settings: Settings,
    start: datetime,
    end: datetime,
    engine: Engine | None = None,
    tables: SilverTables = CONTRACT_TABLES,
) -> SilverResult:
    """Refine bronze rows ingested in ``[start, end)`` into silver; idempotent per window.

    ``engine`` defaults to ``settings.engine.processing``.
    """
    window = Window(start, end)
    chosen = engine or settings.engine.processing
    if chosen == "duckdb":
        from processing.silver.duckdb_runner import run_duckdb

        return run_duckdb(settings, window, tables)
    if chosen == "spark":
        from processing.silver.spark_submit import submit

        return submit(settings, window, tables)
    raise ValueError(f"unknown processing engine {chosen!r}: expected duckdb or spark")


def run_staged(settings: Settings, window: Window, engine: Engine | None = None) -> SilverResult:
    """Refine ``window`` onto its audit branch (write-audit-publish, ``processing/wap.py``), reset
    from ``main`` first; readers see nothing of it until the audit passes and publishes."""
    from infrastructure.catalog import load_catalog
    from processing import wap

    wap.stage_silver(load_catalog(settings), window.start)
    tables = SilverTables(branch=wap.branch_name(window.start))
    return run_silver(settings, window.start, window.end, engine=engine, tables=tables)


def silver_job(
    settings: Settings, window: Window, engine: Engine | None = None, staged: bool = False
) -> SilverResult:
    """One silver run for ``window``, its figures pushed as job ``silver`` (success, rows by kind);
    ``staged``: onto the hour's audit branch instead of ``main``."""
    run = run_staged if staged else lambda s, w, engine: run_silver(s, w.start, w.end, engine=engine)
    return run_and_push(
        settings, JOB, lambda: run(settings, window, engine=engine), SilverResult.metric_counts, window.end,
    )  # fmt: skip
