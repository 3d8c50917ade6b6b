"""Run the quality suites for a window as Great Expectations checkpoints; keep and export the results.

Data is read through DuckDB (the lakehouse catalog) into pandas, and validated by GE's pandas
datasource: GE's SQL datasource cannot hold a DuckDB connection between metric queries. Each run
writes one JSON file under ``<data_dir>/quality/``; ``quality_job`` pushes the run and its
per-suite gauges as job ``quality`` to the Pushgateway (an unreachable gateway only logs a warning).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

from infrastructure.job_metrics import run_and_push
from infrastructure.settings import Settings
from infrastructure.times import Window
from quality.datasets import DATASETS, Dataset

JOB = "quality"
DEFAULT_MAX_SILVER_LAG_S = 3600  # a window whose silver run has not caught up with bronze in an hour


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    success: bool
    rows: int
    evaluated: int
    failed: int
    failures: list[str] = field(default_factory=list)  # "expectation(kwargs): observed"


@dataclass(frozen=True)
class QualityResult:
    start: datetime
    end: datetime
    suites: list[SuiteResult]
    results_file: Path

    @property
    def success(self) -> bool:
        return all(s.success for s in self.suites)

    def metric_counts(self) -> dict[str, int]:
        """Suites checked and failed, for the run's pushed metrics (``lakehouse_job_rows{kind=...}``)."""
        return {"suites": len(self.suites), "suites_failed": sum(not s.success for s in self.suites)}

    def summary(self) -> str:
        lines = [
            f"quality {self.start.isoformat()} .. {self.end.isoformat()}: {'OK' if self.success else 'FAILED'}"
        ]
        for s in self.suites:
            status = "ok" if s.success else "FAILED"
            lines.append(
                f"  {s.suite}: {status} ({s.evaluated - s.failed}/{s.evaluated} expectations, {s.rows} rows)"
            )
            lines += [f"    - {f}" for f in s.failures]
        lines.append(f"  results: {self.results_file}")
        return "\n".join(lines)


def _describe_failure(result: dict) -> str:
    config = result["expectation_config"]
    kwargs = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
    observed = result.get("result", {})
    detail = observed.get(
        "observed_value", observed.get("partial_unexpected_list", observed.get("unexpected_count"))
    )
    if result.get("exception_info", {}).get("raised_exception"):
        detail = result["exception_info"]["exception_message"]
    return f"{config['type']}({', '.join(f'{k}={v}' for k, v in kwargs.items())}): observed {detail}"


def suite_result(name: str, rows: int, validation: dict) -> SuiteResult:
    """A readable digest of one GE validation result (its JSON dict)."""
    results = validation["results"]
    failed = [r for r in results if not r["success"]]
    return SuiteResult(
        suite=name,
        success=bool(validation["success"]),
        rows=rows,
        evaluated=len(results),
        failed=len(failed),
        failures=[_describe_failure(r) for r in failed],
    )


def suites_for(settings: Settings, max_silver_lag_s: int) -> dict[str, object]:
    from quality.suites import candle_suite, deviation_suite, reconciliation_suite, silver_suite

    return {
        "silver_trades": silver_suite(settings.products),
        "gold_ohlcv_1m": candle_suite("gold_ohlcv_1m"),
        "gold_ohlcv_1h": candle_suite("gold_ohlcv_1h"),
        "reconciliation": reconciliation_suite(max_silver_lag_s),
        "gold_price_deviation_1m": deviation_suite(settings.coingecko.max_deviation_bps),
    }


def read_window(settings: Settings, datasets: tuple[Dataset, ...], start: datetime, end: datetime) -> dict:
    """Each dataset of the window as a pandas DataFrame, read through DuckDB."""
    from processing.duckdb_engine import connect

    con = connect(settings)
    try:
        return {d.name: con.execute(d.sql, [start, end]).df() for d in datasets}
    finally:
        con.close()


def validate(frames: dict, suites: dict) -> tuple[list[SuiteResult], dict]:
    """Run one GE checkpoint per dataset (pandas datasource, ephemeral context)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # batch jobs log, not animate
    source = context.data_sources.add_pandas("lakehouse")
    digests, raw = [], {}
    for name, frame in frames.items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = context.suites.add(suites[name])
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(name=f"{name}_window", validation_definitions=[definition])
        )
        run = checkpoint.run(batch_parameters={"dataframe": frame})
        validation = next(iter(run.run_results.values())).to_json_dict()
        raw[name] = validation
        digests.append(suite_result(name, len(frame), validation))
    return digests, raw


def metrics_registry(suites: list[SuiteResult], end: datetime, registry: CollectorRegistry | None = None):
    """The gauges one quality run exports (labels: suite only; no timestamps or ids as labels)."""
    registry = registry if registry is not None else CollectorRegistry()
    success = Gauge(
        "lakehouse_quality_suite_success", "1 if every expectation passed", ["suite"], registry=registry
    )
    evaluated = Gauge(
        "lakehouse_quality_expectations_evaluated", "expectations evaluated", ["suite"], registry=registry
    )
    failed = Gauge(
        "lakehouse_quality_expectations_failed", "expectations failed", ["suite"], registry=registry
    )
    rows = Gauge("lakehouse_quality_rows_validated", "rows validated", ["suite"], registry=registry)
    for s in suites:
        success.labels(s.suite).set(1 if s.success else 0)
        evaluated.labels(s.suite).set(s.evaluated)
        failed.labels(s.suite).set(s.failed)
        rows.labels(s.suite).set(s.rows)
    Gauge(
        "lakehouse_quality_window_end_timestamp_seconds", "end of the last window checked", registry=registry
    ).set(end.timestamp())
    return registry


def run_quality(
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    max_silver_lag_s: int = DEFAULT_MAX_SILVER_LAG_S,
    datasets: tuple[Dataset, ...] = DATASETS,
) -> QualityResult:
    """Validate silver and gold for ``[start, end)``; write results JSON and push metrics.
    ``datasets``: what is read (``quality.audit`` passes them aimed at an hour's staged state)."""
    if start.tzinfo is None or end.tzinfo is None or start >= end:
        raise ValueError(f"the window needs timezone-aware start < end, got {start} .. {end}")
    frames = read_window(settings, datasets, start, end)
    digests, raw = validate(frames, suites_for(settings, max_silver_lag_s))
    out_dir = settings.data_dir / "quality"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = f"{start.astimezone(UTC):%Y%m%dT%H%M%SZ}_{end.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    results_file = out_dir / f"{stamp}.json"
    document = {
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "checked_at": datetime.now(UTC).isoformat(),
        "success": all(d.success for d in digests),
        "suites": [asdict(d) for d in digests],
        "validations": raw,
    }
    results_file.write_text(json.dumps(document, indent=2, default=str))
    return QualityResult(start, end, digests, results_file)


def quality_job(
    settings: Settings,
    window: Window,
    max_silver_lag_s: int = DEFAULT_MAX_SILVER_LAG_S,
    datasets: tuple[Dataset, ...] = DATASETS,
) -> QualityResult:
    """One quality run for ``window`` pushed as job ``quality`` (success, duration, suites, window),
    besides the per-suite gauges ``run_quality`` pushes."""
    return run_and_push(
        settings, JOB,
        lambda: run_quality(settings, window.start, window.end, max_silver_lag_s=max_silver_lag_s, datasets=datasets),
        QualityResult.metric_counts, window.end, lambda r, registry: metrics_registry(r.suites, r.end, registry),
    )  # fmt: skip
