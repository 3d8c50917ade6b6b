"""Every panel query of the dashboards runs and returns what its panel draws: PromQL against a
real Prometheus scraping live metrics and a Pushgateway, Trino SQL on the gold lakehouse through
DuckDB after sqlglot transpilation."""

from __future__ import annotations

import math

import pytest

from monitoring.dashboard.data import prometheus_data, sql_data, variable_values
from monitoring.panels import DASHBOARDS, Panel
from processing.duckdb_engine import connect

PROM_PANELS = [p for d in DASHBOARDS for p in d.panels if p.source == "prometheus"]
SQL_PANELS = [p for d in DASHBOARDS for p in d.panels if p.source == "trino"]
VARIABLES = [v for d in DASHBOARDS for v in d.variables]


def test_both_kinds_of_panels_exist() -> None:
    assert len(PROM_PANELS) >= 8 and len(SQL_PANELS) >= 14


@pytest.mark.parametrize(
    "expr",
    [q.expr for p in PROM_PANELS for q in p.queries],
    ids=[f"{p.key}-{q.legend}" for p in PROM_PANELS for q in p.queries],
)
def test_promql_returns_a_series(observed_prometheus, expr: str) -> None:
    result = observed_prometheus.wait_for(expr)
    assert result


@pytest.mark.parametrize("panel", PROM_PANELS, ids=[p.key for p in PROM_PANELS])
def test_prometheus_panel_data_has_points(observed_prometheus, panel: Panel) -> None:
    for query in panel.queries:
        observed_prometheus.wait_for(query.expr)
    data = prometheus_data(observed_prometheus.url, panel)
    assert len(data["series"]) >= len(panel.queries)
    for series in data["series"]:
        assert series["name"] and "{{" not in series["name"]
        assert any(v is not None and math.isfinite(v) for _, v in series["points"]), series


@pytest.fixture(scope="module")
def gold_con(gold_lakehouse):
    con = connect(gold_lakehouse.settings)
    yield con
    con.close()


@pytest.fixture(scope="module")
def variable_values_by_name(gold_con) -> dict[str, list[str]]:
    return {v.name: variable_values(gold_con, v) for v in VARIABLES}


def test_variables_list_the_products(variable_values_by_name) -> None:
    assert variable_values_by_name["product"] == ["BTC-USD", "DOGE-USD"]
    assert variable_values_by_name["exchange"] == ["coinbase"]


@pytest.mark.parametrize("panel", SQL_PANELS, ids=[p.key for p in SQL_PANELS])
def test_sql_panel_returns_rows_with_its_columns(gold_con, variable_values_by_name, panel: Panel) -> None:
    values = {name: found[0] for name, found in variable_values_by_name.items()}
    data = sql_data(gold_con, panel, values)
    assert tuple(data["columns"]) == panel.columns
    assert data["rows"], f"{panel.key}: no rows"
    for row in data["rows"]:
        numeric = [v for v in row if isinstance(v, int | float)]
        assert numeric, f"{panel.key}: nothing to draw in {row}"
    if panel.kind in ("timeseries", "candlestick", "heatmap"):
        times = [row[0] for row in data["rows"]]
        assert all(isinstance(t, int) for t in times) and times == sorted(times)
    if panel.kind == "candlestick":
        assert all(low <= min(o, c) and high >= max(o, c) for _, o, high, low, c, *_ in data["rows"])
        # the moving averages drawn over the candles (set once their window is full)
        assert all(v is not None for v in data["rows"][-1][6:])


def test_candles_follow_the_product_variable(gold_con, variable_values_by_name) -> None:
    candles = next(p for p in SQL_PANELS if p.key == "candles")
    closes = {
        product: sql_data(gold_con, candles, {"exchange": "coinbase", "product": product})["rows"][-1][4]
        for product in variable_values_by_name["product"]
    }
    assert closes["BTC-USD"] > 1000 > 1 > closes["DOGE-USD"]


@pytest.mark.parametrize("panel", [p for p in SQL_PANELS if "$exchange" in p.queries[0].expr],
                         ids=lambda p: p.key)  # fmt: skip
def test_market_panels_show_one_venue(gold_con, variable_values_by_name, panel: Panel) -> None:
    values = {name: found[0] for name, found in variable_values_by_name.items()}
    assert sql_data(gold_con, panel, values)["rows"]
    # the gold fixture holds coinbase trades only: another venue (synthetic) draws nothing of them
    assert sql_data(gold_con, panel, values | {"exchange": "synthetic"})["rows"] == []
