"""The dashboards' panels, defined once: Grafana's JSON is generated from here (``make dashboards``)
and ``lakehouse dashboard`` renders the same definitions, so a query exists in exactly one place.

SQL panels are written in Trino SQL against ``iceberg.gold.*`` (the compose stack's catalog);
the embedded stack runs them on DuckDB after ``sqlglot`` transpilation (``monitoring.sql``).
They avoid Grafana's time macros and show the newest data *present* (windows are measured back
from the table's own newest row), so a stack that stopped ingesting still shows its last hours
and the same query is testable on fixed test data. ``$exchange`` and ``$product`` are dashboard
variables: every market panel shows one venue, so synthetic trades (venue ``synthetic``) are never
mixed into a real exchange's candles, prices or volumes.

Column conventions of SQL panels (``Panel.columns``, checked by the tests):
``stat`` label, value[, ...]; ``timeseries`` time, metric, value (long format, one series per
metric); ``candlestick`` time, open, high, low, close, volume[, overlay line, ...];
``barchart`` label, value[, ...]; ``heatmap`` time, metric, value (one row of cells per metric);
``table`` any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["stat", "timeseries", "candlestick", "barchart", "heatmap", "table"]
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


def _series_panel(
    key: str,
    title: str,
    table: str,
    time: str,
    value: str,
    *,
    since: str,
    unit: str = "",
    where: str = "exchange = '$exchange'",
    metric: str = "product_id",
    kind: Kind = "timeseries",
    width: int = 8,
    description: str = "",
) -> Panel:
    """A long-format (time, metric, value) panel over one gold table, back from its newest row."""
    return Panel(
        key, title, kind, "trino",
        (
            Query(
                _sql(f"""
                    SELECT {time} AS time, {metric} AS metric, CAST({value} AS double) AS value
                    FROM {GOLD}.{table}
                    WHERE {where} AND {value} IS NOT NULL
                      AND {time} >= (SELECT max({time}) FROM {GOLD}.{table} WHERE {where}) - INTERVAL {since}
                    ORDER BY 1, 2"""),
            ),
        ),
        columns=("time", "metric", "value"), unit=unit, width=width, description=description,
    )  # fmt: skip


# Issue #16's analytics (price statistics, moving averages, 24 h figures, heatmap, 5-minute health),
# appended to each dashboard after its original panels.
MARKET_ANALYTICS = (
    Panel(
        "ticker_24h",
        "24 h ticker on $exchange",
        "table",
        "trino",
        (
            Query(
                _sql(f"""
                    SELECT product_id, CAST(close AS double) AS price,
                        CAST(price_change_24h AS double) AS change_24h,
                        CAST(high_24h AS double) AS high_24h, CAST(low_24h AS double) AS low_24h,
                        CAST(volume_24h AS double) AS volume_24h, CAST(notional_24h AS double) AS notional_24h,
                        trade_count_24h, volatility_24h
                    FROM {GOLD}.rolling_24h r
                    WHERE exchange = '$exchange'
                      AND hour_start = (SELECT max(hour_start) FROM {GOLD}.rolling_24h n
                                        WHERE n.exchange = r.exchange AND n.product_id = r.product_id)
                    ORDER BY product_id"""),
            ),
        ),
        columns=(
            "product_id",
            "price",
            "change_24h",
            "high_24h",
            "low_24h",
            "volume_24h",
            "notional_24h",
            "trade_count_24h",
            "volatility_24h",
        ),
        width=24,
        description="Each product's trailing 24 hours up to its newest traded hour (gold.rolling_24h): "
        "price change, range, base volume, quote notional, trades, volatility of 1-minute log returns.",
    ),
    _series_panel(
        "price_change_1m",
        "1-minute price change (close - open) / open",
        "price_stats_1m",
        "candle_start",
        "price_change",
        since="'3' HOUR",
        unit="percentunit",
        description="gold.price_stats_1m over the last 3 h of data.",
    ),
    _series_panel(
        "volatility_1m",
        "1-minute volatility (std dev of trade prices / average)",
        "price_stats_1m",
        "candle_start",
        "price_stddev / CAST(avg_price AS double)",
        since="'3' HOUR",
        unit="percentunit",
        description="Sample standard deviation of the minute's trade prices relative to their mean "
        "(gold.price_stats_1m); minutes with one trade have none.",
    ),
    _series_panel(
        "trades_per_minute",
        "Trades per minute",
        "price_stats_1m",
        "candle_start",
        "trade_count",
        since="'3' HOUR",
        unit="short",
        description="gold.price_stats_1m trade_count.",
    ),
    _series_panel(
        "volume_heatmap",
        "Hourly notional by product (share of its trailing 24 h)",
        "volume_heatmap_1h",
        "hour_start",
        "notional_share_24h",
        since="'23' HOUR",
        unit="percentunit",
        kind="heatmap",
        width=12,
        description="gold.volume_heatmap_1h: each cell is the hour's quote notional as a share of the "
        "product's trailing 24 hours, so products of any size share one colour scale.",
    ),
    _series_panel(
        "volatility_24h",
        "Rolling 24 h volatility",
        "rolling_24h",
        "hour_start",
        "volatility_24h",
        since="'7' DAY",
        unit="percentunit",
        width=6,
        description="sqrt of the sum of squared 1-minute log returns over the trailing 24 h (gold.rolling_24h).",
    ),
    _series_panel(
        "notional_24h",
        "Rolling 24 h notional",
        "rolling_24h",
        "hour_start",
        "notional_24h",
        since="'7' DAY",
        unit="short",
        width=6,
        description="Quote-currency volume over the trailing 24 h, hour by hour (gold.rolling_24h).",
    ),
)

HEALTH_ANALYTICS = (
    _series_panel(
        "trades_5m",
        "Trades per 5 minutes",
        "pipeline_health_5m",
        "bucket_start",
        "trade_count",
        since="'24' HOUR",
        unit="short",
        where="true",
        metric="product_id || ' ' || exchange",
        width=12,
        description="Silver trades by exchange time in 5-minute buckets (gold.pipeline_health_5m).",
    ),
    _series_panel(
        "silence_5m",
        "Time since the last ingested trade",
        "pipeline_health_5m",
        "bucket_start",
        "seconds_since_last_ingest",
        since="'24' HOUR",
        unit="s",
        where="true",
        metric="product_id || ' ' || exchange",
        width=12,
        description="At the end of each 5-minute bucket: time since the product's newest bronze ingest "
        "(gold.pipeline_health_5m); a product that went quiet climbs.",
    ),
)

MARKET_OVERVIEW = Dashboard(
    uid="lakehouse-market",
    title="Market Overview",
    variables=(
        Variable("exchange", _sql(f"SELECT DISTINCT exchange FROM {GOLD}.latest_prices ORDER BY 1")),
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
                        FROM {GOLD}.latest_prices WHERE exchange = '$exchange' ORDER BY product_id"""),
                ),
            ),
            columns=("product_id", "price", "last_trade_time"),
            width=24,
            description="Close of each product's newest 1-minute candle (gold.latest_prices).",
        ),
        Panel(
            "candles",
            "$product 1-minute candles on $exchange (last 3 h of data)",
            "candlestick",
            "trino",
            (
                Query(
                    _sql(f"""
                        SELECT c.candle_start AS time, CAST(c.open AS double) AS open,
                            CAST(c.high AS double) AS high, CAST(c.low AS double) AS low,
                            CAST(c.close AS double) AS close, CAST(c.volume AS double) AS volume,
                            CAST(m.sma_20 AS double) AS sma_20, CAST(m.sma_50 AS double) AS sma_50,
                            m.ema_20, m.ema_50
                        FROM {GOLD}.ohlcv_1m c
                        LEFT JOIN {GOLD}.moving_averages_1m m
                          ON m.exchange = c.exchange AND m.product_id = c.product_id
                          AND m.candle_start = c.candle_start
                        WHERE c.exchange = '$exchange' AND c.product_id = '$product'
                          AND c.candle_start >= (SELECT max(candle_start) FROM {GOLD}.ohlcv_1m
                                                 WHERE exchange = '$exchange' AND product_id = '$product')
                                                - INTERVAL '3' HOUR
                        ORDER BY 1"""),
                ),
            ),
            columns=(
                "time",
                "open",
                "high",
                "low",
                "close",
                "volume",
                "sma_20",
                "sma_50",
                "ema_20",
                "ema_50",
            ),
            width=24,
            description="gold.ohlcv_1m with gold.moving_averages_1m (SMA/EMA over 20 and 50 one-minute "
            "closes); decimals are cast to double for drawing only.",
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
                        WHERE exchange = '$exchange'
                          AND candle_start >= (SELECT max(candle_start) FROM {GOLD}.ohlcv_1h
                                               WHERE exchange = '$exchange') - INTERVAL '23' HOUR
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
                        WHERE exchange = '$exchange' AND realized_volatility IS NOT NULL
                          AND day_start >= (SELECT max(day_start) FROM {GOLD}.daily_metrics
                                            WHERE exchange = '$exchange') - INTERVAL '30' DAY
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
                        WHERE exchange = '$exchange'
                          AND candle_start >= (SELECT max(candle_start) FROM {GOLD}.orderflow_1m
                                               WHERE exchange = '$exchange') - INTERVAL '1' HOUR
                        ORDER BY 1, 2"""),
                ),
            ),
            columns=("time", "metric", "value"),
            width=8,
            description="(buy - sell) / (buy + sell) taker volume, -1..1 (gold.orderflow_1m).",
        ),
        _series_panel(
            "deviation",
            "$product on $exchange against the reference and other venues (bps)",
            "price_deviation_1m",
            "candle_start",
            "deviation_bps",
            since="'3' HOUR",
            where="exchange = '$exchange' AND product_id = '$product'",
            metric="versus",
            width=24,
            description="(VWAP - versus price) x 10000 / versus price per minute (gold.price_deviation_1m): one "
            "series per reference source (coingecko) and per other venue trading the same product id.",
        ),
        *MARKET_ANALYTICS,
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
                Query('min(lakehouse_job_last_success{job=~"silver|gold|quality"})', "succeeded (1 = yes)"),
                Query(
                    'time() - lakehouse_job_last_run_timestamp_seconds{job="quality"}',
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
                Query("max(lakehouse_storage_log_bytes) / 1048576", "SeaweedFS filer journal MiB"),
            ),
            unit="short",
            description="The journal under the tables is cut to the retention each hour (embedded stack; "
            "docs/maintenance.md).",
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
        *HEALTH_ANALYTICS,
    ),
)

DASHBOARDS = (MARKET_OVERVIEW, PIPELINE_HEALTH)
