"""Panel data for the local dashboard: SQL panels on DuckDB (the lakehouse attached), PromQL
panels through Prometheus' HTTP API. Results are plain JSON: times as epoch milliseconds,
decimals as floats (drawing only), NaN and missing values as null."""

from __future__ import annotations

import json
import math
import re
import time
import urllib.parse
import urllib.request
from datetime import date, datetime
from decimal import Decimal

import duckdb

from monitoring.panels import Dashboard, Panel, Query, Variable
from monitoring.sql import to_duckdb

RANGE_S = 15 * 60  # PromQL time series: the last 15 minutes...
STEP_S = 15  # ...at one point per 15 s
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def json_value(value: object) -> object:
    if isinstance(value, datetime | date):
        moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
        return int(moment.timestamp() * 1000)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def variable_values(con: duckdb.DuckDBPyConnection, variable: Variable) -> list[str]:
    return [str(row[0]) for row in con.execute(to_duckdb(variable.query)).fetchall()]


def sql_data(con: duckdb.DuckDBPyConnection, panel: Panel, values: dict[str, str]) -> dict:
    cursor = con.execute(to_duckdb(panel.queries[0].expr, values))
    columns = [d[0] for d in cursor.description]
    rows = [[json_value(v) for v in row] for row in cursor.fetchall()]
    return {"columns": columns, "rows": rows}


def legend(query: Query, labels: dict[str, str]) -> str:
    if query.legend:
        return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), query.legend)
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__") or "value"


def _sample(value: str) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def prometheus_get(base_url: str, path: str, params: dict[str, object], timeout: float = 10) -> dict:
    url = f"{base_url.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus: {body.get('error', body)}")
    return body["data"]


def prometheus_data(base_url: str, panel: Panel, now: float | None = None) -> dict:
    """Series of every query of the panel: instant values for stats, a 15-minute range otherwise."""
    now = time.time() if now is None else now
    series = []
    for query in panel.queries:
        if panel.kind == "stat":
            data = prometheus_get(base_url, "/api/v1/query", {"query": query.expr, "time": now})
            results = [(r["metric"], [r["value"]]) for r in data["result"]]
        else:
            params = {"query": query.expr, "start": now - RANGE_S, "end": now, "step": STEP_S}
            data = prometheus_get(base_url, "/api/v1/query_range", params)
            results = [(r["metric"], r["values"]) for r in data["result"]]
        for labels, values in results:
            points = [[int(float(t) * 1000), _sample(v)] for t, v in values]
            series.append({"name": legend(query, labels), "points": points})
    return {"series": series}


def panel_data(
    dashboard: Dashboard,
    panel: Panel,
    values: dict[str, str],
    con: duckdb.DuckDBPyConnection | None,
    prometheus_url: str,
) -> dict:
    """The panel's data, or ``{"error": ...}`` saying why there is none (a stopped service)."""
    try:
        if panel.source == "trino":
            if con is None:
                raise RuntimeError("the lakehouse catalog is not reachable")
            data = sql_data(con, panel, values)
        else:
            data = prometheus_data(prometheus_url, panel)
    except Exception as exc:  # shown on the panel: one failing query must not break the page
        return {"error": f"{type(exc).__name__}: {exc}"}
    return data
