"""``lakehouse dashboard`` in headless Chromium: every panel of both dashboards draws data from the
gold lakehouse (DuckDB) and from a live Prometheus with its chart library (lightweight-charts for
candles, uPlot for time series), units read as people write them, hovering a candle shows its
values, and an empty panel says so; screenshots go to test-output/."""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infrastructure.services import free_port, url_port
from monitoring.dashboard.server import NODE_MODULES, VENDOR, make_server
from monitoring.panels import DASHBOARDS

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
SCREENSHOT = OUTPUT / "dashboard.png"
HOVER_SCREENSHOT = OUTPUT / "dashboard-candles-hover.png"
PANELS = [p for d in DASHBOARDS for p in d.panels]
REFRESH_S = 1.0  # the page re-fetches every panel this often


@pytest.fixture
def dashboard_url(gold_lakehouse, observed_prometheus):
    missing = [r for r, _ in VENDOR.values() if not (NODE_MODULES / r).is_file()]
    assert not missing, f"chart libraries missing ({missing}): run make setup"
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


# per panel, what the chart library holds and how many pixels it painted on its canvases
LIBRARY_STATE = """
(() => {
  const painted = node => [...node.querySelectorAll("canvas")].reduce((n, canvas) => {
    const {width, height} = canvas;
    if (!width || !height) return n;
    const px = canvas.getContext("2d").getImageData(0, 0, width, height).data;
    let count = 0;
    for (let i = 0; i < px.length; i += 4)  // not transparent and not the panel background
      if (px[i + 3] > 0 && Math.abs(px[i] - 24) + Math.abs(px[i + 1] - 27) + Math.abs(px[i + 2] - 31) > 60) count++;
    return n + count;
  }, 0);
  const out = {};
  for (const [key, c] of Object.entries(window.dashboard.charts)) {
    const node = document.getElementById("panel-" + key);
    const entry = {lib: c.lib, points: c.points, painted: painted(node)};
    if (c.lib === "uplot") {
      entry.times = c.instance.data[0].length;
      entry.series = c.instance.series.length - 1;
      entry.values = c.instance.data.slice(1).reduce((n, s) => n + s.filter(v => v !== null).length, 0);
    }
    if (c.lib === "lightweight-charts") {
      entry.candles = c.candles.data().length;
      entry.volume = c.volume.data().length;
      entry.overlays = Object.fromEntries(Object.entries(c.overlays).map(([k, s]) => [k, s.data().length]));
    }
    out[key] = entry;
  }
  return out;
})()
"""
EXPECTED_LIB = {"candlestick": "lightweight-charts", "timeseries": "uplot"}


def screenshot_whole_page(page, path: Path) -> None:
    size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    clip = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
    path.parent.mkdir(parents=True, exist_ok=True)
    shot = page.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def test_every_panel_draws_data_with_its_library(dashboard_url: str, browser) -> None:
    page = browser(f"{dashboard_url}/")
    total = len(PANELS)
    settled = f"document.querySelectorAll('.panel:not([data-state=loading])').length === {total}"
    page.wait_until(settled, timeout_s=120)
    states = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('.panel')]"
        ".map(p => [p.id, [p.dataset.state, +p.dataset.points]]))"
    )
    screenshot_whole_page(page, SCREENSHOT)
    assert states == {f"panel-{p.key}": ["ok", states[f"panel-{p.key}"][1]] for p in PANELS}, states
    drawn = page.evaluate(LIBRARY_STATE)
    for panel in PANELS:
        got = drawn[panel.key]
        assert got["points"] > 0, (panel.key, got)
        assert got["lib"] == EXPECTED_LIB.get(panel.kind, "html"), (panel.key, got)
        if got["lib"] == "uplot":  # the data is in uPlot and it painted lines on its canvas
            assert got["series"] >= 1 and got["values"] == got["points"] and got["painted"] > 200, (
                panel.key,
                got,
            )
        if got["lib"] == "lightweight-charts":
            assert got["candles"] == got["volume"] == got["points"] and got["painted"] > 2000, got
            assert set(got["overlays"]) == {"sma_20", "sma_50", "ema_20", "ema_50"}
            assert all(0 < n <= got["candles"] for n in got["overlays"].values()), got
    assert page.evaluate("document.querySelectorAll('#panel-volume_heatmap .cell').length") >= 8
    assert page.evaluate("document.querySelectorAll('#panel-ticker_24h tr').length") == 3  # header + 2
    assert SCREENSHOT.stat().st_size > 50_000


def test_readable_units(dashboard_url: str, browser) -> None:
    page = browser(f"{dashboard_url}/")
    page.wait_until("document.querySelector('#panel-stages')?.dataset.state === 'ok'", timeout_s=120)
    page.wait_until("document.querySelector('#panel-ticker_24h')?.dataset.state === 'ok'", timeout_s=60)
    stages = page.evaluate("[...document.querySelectorAll('#panel-stages td')].map(td => td.textContent)")
    freshness = stages[4::5]  # the freshness_seconds column: months since the fixture's trades
    # two units at most, and a zero second unit dropped ("275 d", not "275 d 0 h")
    assert all(re.fullmatch(r"\d+ d( [1-9]\d* h)?", text) for text in freshness), freshness
    ticker = page.evaluate(
        "[...document.querySelectorAll('#panel-ticker_24h tr')].map(tr => [...tr.children].map(c => c.textContent))"
    )
    btc, doge = ticker[1], ticker[2]
    assert re.fullmatch(r"\d{2},\d{3}\.\d{2}", btc[1]), btc  # BTC-USD quoted in cents
    assert re.fullmatch(r"0\.\d{8}", doge[1]), doge  # DOGE-USD to its 8-decimal tick
    assert re.fullmatch(r"-?\d+\.\d{2,3} %", btc[2]), btc
    assert re.fullmatch(r"\d{1,3}(,\d{3}){2,}(\.\d{1,2})?", btc[6]), btc  # notional: thousands separators


def test_hovering_a_candle_shows_its_values(dashboard_url: str, browser) -> None:
    page = browser(f"{dashboard_url}/")
    page.wait_until("document.querySelector('#panel-candles')?.dataset.state === 'ok'", timeout_s=120)
    target = page.evaluate(
        """(() => {
          const c = window.dashboard.charts.candles;
          const bars = c.candles.data();
          const bar = bars[Math.floor(bars.length / 2)];  // not the newest: the legend's default
          const box = c.instance.chartElement().getBoundingClientRect();
          return {bar, x: box.left + c.instance.timeScale().timeToCoordinate(bar.time),
                  y: box.top + c.candles.priceToCoordinate(bar.close),
                  decimals: c.candles.options().priceFormat.precision,
                  before: c.legend.textContent};
        })()"""
    )
    page.call("Input.dispatchMouseEvent", type="mouseMoved", x=target["x"], y=target["y"])
    bar, decimals = target["bar"], target["decimals"]
    when = datetime.fromtimestamp(bar["time"], UTC).strftime("%Y-%m-%d %H:%M UTC")
    legend = page.wait_until(
        f"(t => t.includes({when!r}) && t)(window.dashboard.charts.candles.legend.textContent)", timeout_s=10
    )
    assert legend != target["before"]
    for label in ("open", "high", "low", "close"):
        assert f"{label[0].upper()} {bar[label]:,.{decimals}f}" in legend, (label, legend)
    assert "V " in legend and "SMA 20" in legend
    node = page.evaluate(
        "(b => ({x: b.x, y: b.y, width: b.width, height: b.height}))"
        "(document.getElementById('panel-candles').getBoundingClientRect())"
    )
    shot = page.call("Page.captureScreenshot", format="png", clip={**node, "scale": 1})
    HOVER_SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))


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


def test_a_panel_without_data_says_so(dashboard_url: str, browser) -> None:
    """A product gold has no candles for (picked by link, as Grafana's var- parameters do)."""
    page = browser(f"{dashboard_url}/?var-product=NONE-USD")
    page.wait_until(
        "(s => s && s !== 'loading')(document.querySelector('#panel-candles')?.dataset.state)", 120
    )
    assert page.evaluate("document.querySelector('#panel-candles').dataset.state") == "empty"
    assert page.evaluate("document.querySelector('#panel-candles .empty').textContent") == "no data yet"
    assert "NONE-USD" in page.evaluate("document.querySelector('#panel-candles h3').textContent")


def test_the_chart_libraries_come_from_node_modules(dashboard_url: str) -> None:
    for name, (relative, _) in VENDOR.items():
        with urllib.request.urlopen(f"{dashboard_url}/vendor/{name}", timeout=10) as r:
            assert r.read() == (NODE_MODULES / relative).read_bytes()
    lock = json.loads((NODE_MODULES.parent / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/lightweight-charts"]["version"].startswith("5.")
    assert lock["node_modules/uplot"]["version"].startswith("1.6.")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"{dashboard_url}/vendor/jquery.js", timeout=10)
    assert raised.value.code == 404


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
