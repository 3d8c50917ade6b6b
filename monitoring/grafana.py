"""Grafana dashboard JSON generated from ``monitoring.panels`` (the one source of the queries).

``python -m monitoring.grafana`` (``make dashboards``) writes ``monitoring/grafana/dashboards/*.json``;
``--check`` exits 1 if the committed files differ from what the definitions generate (a unit test
does the same). The JSON follows Grafana's dashboard schema (checked with ``@grafana/schema``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from monitoring.panels import DASHBOARDS, DATASOURCE_TYPES, DATASOURCES, Dashboard, Panel

DASHBOARD_DIR = Path(__file__).resolve().parent / "grafana" / "dashboards"
SCHEMA_VERSION = 41  # Grafana 12.1's dashboard schema version
PANEL_HEIGHT = 8
REF_IDS = "ABCDEFGH"
# Trino plugin's FormatOptions enum: 0 time series, 1 table
TRINO_FORMAT = {"timeseries": 0}


def _datasource(panel: Panel) -> dict:
    return {"type": DATASOURCE_TYPES[panel.source], "uid": DATASOURCES[panel.source]}


def _targets(panel: Panel) -> list[dict]:
    targets = []
    for ref, query in zip(REF_IDS, panel.queries, strict=False):
        target: dict = {"refId": ref, "datasource": _datasource(panel)}
        if panel.source == "prometheus":
            target |= {"expr": query.expr, "legendFormat": query.legend or "__auto", "range": True}
        else:
            target |= {"rawSQL": query.expr, "format": TRINO_FORMAT.get(panel.kind, 1)}
        targets.append(target)
    return targets


def _options(panel: Panel) -> dict:
    if panel.kind == "stat":
        return {
            "reduceOptions": {"values": panel.source == "trino", "calcs": ["lastNotNull"], "fields": ""},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "auto",
        }
    if panel.kind == "candlestick":
        # includeAllFields: columns after volume (the moving averages) are drawn as lines over the candles
        return {
            "mode": "candles+volume",
            "candleStyle": "candles",
            "colorStrategy": "open-close",
            "includeAllFields": True,
        }
    if panel.kind == "heatmap":
        # cells as given (the groupingToMatrix transformation makes one bucket row per metric)
        return {
            "calculate": False,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
            "cellGap": 1,
        }
    if panel.kind == "barchart":
        return {"xField": panel.columns[0], "orientation": "auto", "showValue": "auto"}
    if panel.kind == "timeseries":
        return {"legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"}}
    return {"showHeader": True}


def _transformations(panel: Panel) -> list[dict]:
    """A heatmap's long (time, metric, value) rows become one column per metric, which Grafana's
    heatmap draws as one row of cells each."""
    if panel.kind != "heatmap":
        return []
    options = {"columnField": panel.columns[1], "rowField": panel.columns[0], "valueField": panel.columns[2]}
    return [{"id": "groupingToMatrix", "options": options}]


def _grid(panels: tuple[Panel, ...]) -> list[dict]:
    """Left to right, wrapping at 24 columns."""
    x = y = 0
    out = []
    for panel in panels:
        if x + panel.width > 24:
            x, y = 0, y + PANEL_HEIGHT
        out.append({"x": x, "y": y, "w": panel.width, "h": PANEL_HEIGHT})
        x += panel.width
    return out


def dashboard_json(dashboard: Dashboard) -> dict:
    panels = []
    for number, (panel, grid) in enumerate(zip(dashboard.panels, _grid(dashboard.panels), strict=True), 1):
        panels.append(
            {
                "id": number,
                "type": panel.kind,
                "title": panel.title,
                "description": panel.description,
                "datasource": _datasource(panel),
                "gridPos": grid,
                "targets": _targets(panel),
                "fieldConfig": {"defaults": {"unit": panel.unit or "none"}, "overrides": []},
                "options": _options(panel),
                "transformations": _transformations(panel),
            }
        )
    variables = [
        {
            "name": v.name,
            "type": "query",
            "datasource": {"type": DATASOURCE_TYPES["trino"], "uid": DATASOURCES["trino"]},
            "query": {"rawSQL": v.query, "format": 1, "refId": "variable"},
            "refresh": 1,
            "options": [],
        }
        for v in dashboard.variables
    ]
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "tags": ["lakehouse"],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "refresh": dashboard.refresh,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": dashboard.time_from, "to": "now"},
        "timepicker": {},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def file_name(dashboard: Dashboard) -> str:
    return dashboard.uid.removeprefix("lakehouse-") + ".json"


def rendered() -> dict[str, str]:
    """File name -> JSON text, as committed under ``DASHBOARD_DIR``."""
    return {file_name(d): json.dumps(dashboard_json(d), indent=2) + "\n" for d in DASHBOARDS}


def stale_files(folder: Path = DASHBOARD_DIR) -> list[str]:
    expected = rendered()
    on_disk = {p.name for p in folder.glob("*.json")}
    wrong = [
        n for n, text in expected.items() if not (folder / n).is_file() or (folder / n).read_text() != text
    ]
    return sorted(wrong + sorted(on_disk - set(expected)))


def typescript_source() -> str:
    """A TypeScript module typing every generated dashboard as ``@grafana/schema``'s ``Dashboard``;
    ``tsc --noEmit`` over it fails on a wrong key or type (object literals admit no unknown keys)."""
    lines = ['import type { Dashboard } from "@grafana/schema";', ""]
    for number, dashboard in enumerate(DASHBOARDS):
        lines.append(
            f"export const dashboard{number}: Dashboard = {json.dumps(dashboard_json(dashboard), indent=2)};"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = stale_files()
        if stale:
            print(f"dashboards out of date: {', '.join(stale)}; run `make dashboards`", file=sys.stderr)
            return 1
        return 0
    DASHBOARD_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (DASHBOARD_DIR / name).write_text(text)
        print(f"wrote {DASHBOARD_DIR / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
