"""``lakehouse dashboard`` in headless Chromium: every panel of both dashboards draws data from the
gold lakehouse (DuckDB) and from a live Prometheus; a screenshot goes to test-output/."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from infrastructure.services import free_port, url_port
from monitoring.dashboard.server import make_server
from monitoring.panels import DASHBOARDS

SCREENSHOT = Path(__file__).resolve().parents[2] / "test-output" / "dashboard.png"
PANELS = [p for d in DASHBOARDS for p in d.panels]
REFRESH_S = 1.0  # the page re-fetches every panel this often


@pytest.fixture
def dashboard_url(gold_lakehouse, observed_prometheus):
    for panel in PANELS:  # Prometheus has scraped what every PromQL panel asks for
        for query in panel.queries if panel.source == "prometheus" else ():
            observed_prometheus.wait_for(query.expr)
    gold = gold_lakehouse.settings
    stack = gold.stack.model_copy(update={"prometheus_port": url_port(observed_prometheus.url)})
    metrics = gold.metrics.model_copy(update={"dashboard_refresh_s": REFRESH_S})
    settings = gold.model_copy(update={"stack": stack, "metrics": metrics})
    server = make_server(settings, free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}"
    server.shutdown()
    server.server_close()


def test_every_panel_draws_data(dashboard_url: str, browser) -> None:
    page = browser(f"{dashboard_url}/")
    total = len(PANELS)
    settled = f"document.querySelectorAll('.panel:not([data-state=loading])').length === {total}"
    page.wait_until(settled, timeout_s=90)
    states = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('.panel')]"
        ".map(p => [p.id, [p.dataset.state, +p.dataset.points]]))"
    )
    page.screenshot(SCREENSHOT)
    assert states == {f"panel-{p.key}": ["ok", states[f"panel-{p.key}"][1]] for p in PANELS}, states
    assert all(points > 0 for _, points in states.values())
    # the drawing itself: SVG shapes carrying the data
    drawn = page.evaluate(
        "({candles: document.querySelectorAll('#panel-candles rect.candle').length,"
        " bars: document.querySelectorAll('#panel-volume_24h rect.bar').length,"
        " lines: document.querySelectorAll('#panel-messages path.series, #panel-messages circle.point,"
        " #panel-volatility path.series, #panel-volatility circle.point').length,"
        " rows: document.querySelectorAll('#panel-stages tr').length - 1})"
    )
    assert drawn["candles"] == states["panel-candles"][1] and drawn["bars"] == 2
    assert drawn["lines"] >= 3 and drawn["rows"] == 4
    assert SCREENSHOT.stat().st_size > 10_000


def test_the_page_follows_the_product_variable(dashboard_url: str, browser) -> None:
    with urllib.request.urlopen(f"{dashboard_url}/api/variable?dashboard=lakehouse-market&name=product") as r:
        assert json.load(r)["values"] == ["BTC-USD", "DOGE-USD"]
    page = browser(f"{dashboard_url}/")
    page.wait_until("document.querySelector('#panel-candles')?.dataset.state === 'ok'", timeout_s=90)
    assert "BTC-USD" in page.evaluate("document.querySelector('#panel-candles h3').textContent")
    page.evaluate(
        "(() => { const s = document.getElementById('var-product'); s.value = 'DOGE-USD';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    page.wait_until("document.querySelector('#panel-candles h3').textContent.includes('DOGE-USD')", 60)


def test_unknown_panel_is_a_clear_error(dashboard_url: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"{dashboard_url}/api/panel?dashboard=lakehouse-market&key=nope", timeout=10)
    assert raised.value.code == 400


def test_the_page_refreshes_live(dashboard_url: str, browser) -> None:
    """Each refresh re-asks Prometheus: 'seconds since it ran' is now minus a pushed timestamp."""
    page = browser(f"{dashboard_url}/")
    since = "document.querySelector('#panel-last_hourly_run .tile:nth-child(2) .v').textContent"
    page.wait_until("+(document.body.dataset.refreshes || 0) >= 1", timeout_s=90)
    first = page.evaluate(since)
    page.wait_until("+document.body.dataset.refreshes >= 3", timeout_s=60)
    assert page.evaluate(since) != first
    assert page.evaluate("document.querySelector('#panel-last_hourly_run').dataset.state") == "ok"
