"""The dashboards' panels, defined once: Grafana's JSON is generated from here (``make dashboards``)
and ``lakehouse dashboard`` renders the same definitions, so a query exists in exactly one place.

SQL panels are written in Trino SQL against ``iceberg.gold.*`` (the compose stack's catalog);
the embedded stack runs them on DuckDB after ``sqlglot`` transpilation (``monitoring.sql``).
They avoid Grafana's time macros and show the newest data *present* (windows are measured back
from the table's own newest row), so a stack that stopped ingesting still shows its last hours
and the same query is testable on fixed test data. ``$product`` is a dashboard variable.

Column conventions of SQL panels (``Panel.columns``, checked by the tests):
``stat`` label, value[, ...]; ``timeseries`` time, metric, value (long format, one series per
metric); ``candlestick`` time, open, high, low, close, volume; ``barchart`` label, value[, ...];
``table`` any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["stat", "timeseries", "candlestick", "barchart", "table"]
Source = Literal["prometheus", "trino"]

# Grafana datasource uids, as provisioned in monitoring/grafana/provisioning/datasources/
DATASOURCES = {"prometheus": "prometheus", "trino": "trino"}
DATASOURCE_TYPES = {"prometheus": "prometheus", "trino": "trino-datasource"}


@dataclass(frozen=True)
class Query:
    expr: str  # PromQL or Trino SQL
    legend: str = ""  # PromQL: Grafana legend format, e.g. "{{product}}"


@dataclass(frozen=True)
class Variable:
    name: str
    query: str  # Trino SQL returning one column of values


@dataclass(frozen=True)
class Panel:
    key: str  # stable id (DOM id on the local page, Grafana panel id by position)
    title: str
    kind: Kind
    source: Source
    queries: tuple[Query, ...]
    columns: tuple[str, ...] = ()  # SQL panels: the columns the query returns, in order
    unit: str = ""  # Grafana unit id: s, short, percentunit, ...
    width: int = 12  # of Grafana's 24 grid columns
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    refresh: str = "30s"
    time_from: str = "now-6h"


def _sql(text: str) -> str:
    return " ".join(text.split())


GOLD = "iceberg.gold"

MARKET_OVERVIEW = Dashboard(
    uid="lakehouse-market",
    title="Market Overview",
    variables=(
        Variable("product", _sql(f"SELECT DISTINCT product_id FROM {GOLD}.latest_prices ORDER BY 1")),
    ),
    panels=(
        Panel(
            "latest_prices",
            "Latest price per product",
            "stat",
            "trino",
            (
                Query(
                    _sql(f"""
                        SELECT product_id, CAST(price AS double) AS price, last_trade_time
                        FROM {GOLD}.latest_prices ORDER BY product_id"""),
                ),
            ),
            columns=("product_id", "price", "last_trade_time"),
            width=24,
            description="Close of each product's newest 1-minute candle (gold.latest_prices).",
        ),
        Panel(
            "candles",
            "$product 1-minute candles (last 3 h of data)",
            "candlestick",
            "trino",
            (
                Query(
                    _sql(f"""
                        SELECT candle_start AS time, CAST(open AS double) AS open,
                            CAST(high AS double) AS high, CAST(low AS double) AS low,
                            CAST(close AS double) AS close, CAST(volume AS double) AS volume
                        FROM {GOLD}.ohlcv_1m
                        WHERE product_id = '$product'
                          AND candle_start >= (SELECT max(candle_start) FROM {GOLD}.ohlcv_1m
                                               WHERE product_id = '$product') - INTERVAL '3' HOUR
                        ORDER BY 1"""),
                ),
            ),
            columns=("time", "open", "high", "low", "close", "volume"),
            width=24,
            description="gold.ohlcv_1m; decimals are cast to double for drawing only.",
        ),
        Panel(
            "volume_24h",
            "24 h traded notional by product",
            "barchart",
            "trino",
            (
                Query(
                    _sql(f"""
                        SELECT product_id, CAST(sum(notional) AS double) AS notional,
                            CAST(sum(trade_count) AS bigint) AS trades
                        FROM {GOLD}.ohlcv_1h
                        WHERE candle_start >= (SELECT max(candle_start) FROM {GOLD}.ohlcv_1h)
                                              - INTERVAL '23' HOUR
                        GROUP BY product_id ORDER BY product_id"""),
                ),
            ),
            columns=("product_id", "notional", "trades"),
            width=8,
            description="Sum of price x size in the quote currency over the newest 24 hourly candles.",
        ),
        Panel(
            "volatility",
            "Daily realized volatility",
            "timeseries",
            "trino",
            (
                Query(
                    _sql(f"""
                        SELECT day_start AS time, product_id AS metric, realized_volatility AS value
                        FROM {GOLD}.daily_metrics
                        WHERE realized_volatility IS NOT NULL
                          AND day_start >= (SELECT max(day_start) FROM {GOLD}.daily_metrics)
                                           - INTERVAL '30' DAY
                        ORDER BY 1, 2"""),
                ),
            ),
            columns=("time", "metric", "value"),
            unit="percentunit",
            width=8,
            description="sqrt of the sum of squared 1-minute log returns per day (gold.daily_metrics).",
        ),
        Panel(
            "imbalance",
            "Order-flow imbalance per minute",
            "timeseries",
            "trino",
            (
                Query(
                    _sql(f"""
                        SELECT candle_start AS time, product_id AS metric,
                            CAST(imbalance_ratio AS double) AS value
                        FROM {GOLD}.orderflow_1m
                        WHERE candle_start >= (SELECT max(candle_start) FROM {GOLD}.orderflow_1m)
                                              - INTERVAL '1' HOUR
                        ORDER BY 1, 2"""),
                ),
            ),
            columns=("time", "metric", "value"),
            width=8,
            description="(buy - sell) / (buy + sell) taker volume, -1..1 (gold.orderflow_1m).",
        ),
    ),
)

PIPELINE_HEALTH = Dashboard(
    uid="lakehouse-pipeline",
    title="Pipeline Health",
    time_from="now-1h",
    panels=(
        Panel(
            "websocket",
            "Coinbase WebSocket connected",
            "stat",
            "prometheus",
            (Query("max by (instance) (coinbase_websocket_connected)", "{{instance}}"),),
            width=6,
        ),
        Panel(
            "last_hourly_run",
            "Last hourly run",
            "stat",
            "prometheus",
            (
                Query('lakehouse_job_last_success{job="crypto_hourly"}', "succeeded (1 = yes)"),
                Query(
                    'time() - lakehouse_job_last_run_timestamp_seconds{job="crypto_hourly"}',
                    "seconds since it ran",
                ),
            ),
            width=6,
        ),
        Panel(
            "quality",
            "Quality suites (1 = passed)",
            "stat",
            "prometheus",
            (Query("lakehouse_quality_suite_success", "{{suite}}"),),
            width=12,
        ),
        Panel(
            "messages",
            "Messages per second",
            "timeseries",
            "prometheus",
            (
                Query("sum by (product) (rate(coinbase_trades_received_total[1m]))", "{{product}}"),
                Query("sum(rate(coinbase_messages_produced_total[1m]))", "produced to Kafka"),
                Query("sum(rate(lakehouse_bronze_rows_written_total[1m]))", "written to bronze"),
            ),
            unit="short",
        ),
        Panel(
            "latency",
            "Exchange -> receive latency p95",
            "timeseries",
            "prometheus",
            (
                Query(
                    "histogram_quantile(0.95, sum by (le) (rate(coinbase_message_latency_seconds_bucket[5m])))",
                    "p95",
                ),
            ),
            unit="s",
        ),
        Panel(
            "consumer_lag",
            "Bronze writer consumer lag",
            "timeseries",
            "prometheus",
            (
                Query(
                    "sum by (partition) (lakehouse_bronze_consumer_lag_messages)", "partition {{partition}}"
                ),
            ),
            unit="short",
        ),
        Panel(
            "freshness",
            "Freshness per stage",
            "timeseries",
            "prometheus",
            (
                Query("max(lakehouse_bronze_freshness_seconds)", "bronze"),
                Query('time() - lakehouse_job_window_end_timestamp_seconds{job=~"silver|gold"}', "{{job}}"),
            ),
            unit="s",
            description="Bronze: now minus the newest event committed. Silver/gold: now minus the end "
            "of the last window processed.",
        ),
        Panel(
            "dead_letters",
            "Dead letters per second",
            "timeseries",
            "prometheus",
            (
                Query("sum(rate(coinbase_dead_letters_total[5m]))", "producer"),
                Query("sum(rate(lakehouse_bronze_dead_letters_total[5m]))", "bronze writer"),
            ),
            unit="short",
        ),
        Panel(
            "commit_latency",
            "Bronze commit latency p95",
            "timeseries",
            "prometheus",
            (
                Query(
                    "histogram_quantile(0.95, sum by (le) (rate(lakehouse_bronze_commit_duration_seconds_bucket[15m])))",
                    "p95",
                ),
            ),
            unit="s",
            description="Flat by design: bounded snapshots and manifests (docs/maintenance.md). A rise "
            "means retention stopped keeping up.",
        ),
        Panel(
            "table_snapshots",
            "Snapshots and manifests per table",
            "timeseries",
            "prometheus",
            (
                Query("max by (table) (lakehouse_table_snapshots)", "{{table}} snapshots"),
                Query("max(lakehouse_bronze_table_snapshots)", "bronze.trades snapshots (writer)"),
                Query("max by (table) (lakehouse_table_manifests)", "{{table}} manifests"),
            ),
            unit="short",
            description="After hourly maintenance; the writer's series is live. Bounded: the newest N "
            "snapshots plus one tag per hour of the retention window.",
        ),
        Panel(
            "table_files",
            "Data files and metadata size per table",
            "timeseries",
            "prometheus",
            (
                Query("max by (table) (lakehouse_table_data_files)", "{{table}} data files"),
                Query(
                    "max by (table) (lakehouse_table_metadata_bytes) / 1024", "{{table}} metadata.json KiB"
                ),
            ),
            unit="short",
        ),
        Panel(
            "maintenance",
            "Hourly maintenance",
            "timeseries",
            "prometheus",
            (
                Query(
                    "max by (table, step) (lakehouse_maintenance_step_duration_seconds)",
                    "{{table}} {{step}} (s)",
                ),
                Query(
                    "time() - max by (table) (lakehouse_table_last_maintenance_timestamp_seconds)",
                    "{{table}} seconds since last run",
                ),
            ),
            unit="s",
        ),
        Panel(
            "stages",
            "Lakehouse stages (gold.pipeline_health)",
            "table",
            "trino",
            (
                Query(
                    _sql(f"""
                        SELECT stage, row_count, last_event_time, last_ingest_time, freshness_seconds
                        FROM {GOLD}.pipeline_health ORDER BY stage"""),
                ),
            ),
            columns=("stage", "row_count", "last_event_time", "last_ingest_time", "freshness_seconds"),
            description="Freshness as of the last gold build.",
        ),
    ),
)

DASHBOARDS = (MARKET_OVERVIEW, PIPELINE_HEALTH)
