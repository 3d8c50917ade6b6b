"""The local dashboard's HTTP server (127.0.0.1): the page, the panel definitions and their data.

Routes: ``/`` the page (``page.html``); ``/vendor/<file>`` its chart libraries (lightweight-charts,
uPlot) from ``node_modules`` as ``npm ci`` installed them (``make setup``), so nothing is fetched
from outside;
``/api/dashboards`` the definitions; ``/api/variable?dashboard=&name=`` a variable's values;
``/api/panel?dashboard=&key=&<variable>=`` one panel's data. DuckDB serves one query at a time
(a lock): the page asks for a handful of panels every refresh, far below what that limits.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import duckdb

from infrastructure.settings import Settings
from monitoring.dashboard.data import panel_data, variable_values
from monitoring.panels import DASHBOARDS, Dashboard

log = logging.getLogger(__name__)
PAGE = Path(__file__).with_name("page.html")
NODE_MODULES = Path(__file__).with_name("node_modules")
# what the page loads -> (file under node_modules, content type); versions pinned by package-lock.json
VENDOR = {
    "lightweight-charts.js": (
        "lightweight-charts/dist/lightweight-charts.standalone.production.js",
        "text/javascript; charset=utf-8",
    ),
    "uplot.js": ("uplot/dist/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "uplot.css": ("uplot/dist/uPlot.min.css", "text/css; charset=utf-8"),
}
MISSING_VENDOR = b"chart libraries missing: run `make setup` (npm ci in monitoring/dashboard)"


class DashboardState:
    """What the handlers share: the settings, one DuckDB connection (opened on first use, reopened
    after a failure so the page recovers when the stack comes up) and the dashboards by uid."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.prometheus_url = f"http://{settings.stack.host}:{settings.stack.prometheus_port}"
        self.dashboards: dict[str, Dashboard] = {d.uid: d for d in DASHBOARDS}
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            from processing.duckdb_engine import connect

            self._con = connect(self.settings)
        return self._con

    def query(self, run):
        """Run ``run(connection)`` under the lock; a failure drops the connection for the next call."""
        with self._lock:
            try:
                return run(self._connection())
            except Exception:
                if self._con is not None:
                    self._con.close()
                self._con = None
                raise

    def definitions(self) -> dict:
        return {
            "refresh_s": self.settings.metrics.dashboard_refresh_s,
            "dashboards": [asdict(d) for d in DASHBOARDS],
        }

    def variable(self, uid: str, name: str) -> dict:
        variable = next(v for v in self.dashboards[uid].variables if v.name == name)
        try:
            return {"values": self.query(lambda con: variable_values(con, variable))}
        except Exception as exc:
            return {"values": [], "error": f"{type(exc).__name__}: {exc}"}

    def panel(self, uid: str, key: str, values: dict[str, str]) -> dict:
        dashboard = self.dashboards[uid]
        panel = next(p for p in dashboard.panels if p.key == key)
        if panel.source == "trino":
            try:
                return self.query(lambda con: panel_data(dashboard, panel, values, con, self.prometheus_url))
            except Exception as exc:  # the catalog could not even be attached
                return {"error": f"{type(exc).__name__}: {exc}"}
        return panel_data(dashboard, panel, values, None, self.prometheus_url)


def handler_for(state: DashboardState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            try:
                if url.path == "/":
                    self._send(HTTPStatus.OK, "text/html; charset=utf-8", PAGE.read_bytes())
                elif url.path.startswith("/vendor/"):
                    self._vendor(url.path.removeprefix("/vendor/"))
                elif url.path == "/api/dashboards":
                    self._json(state.definitions())
                elif url.path == "/api/variable":
                    self._json(state.variable(params["dashboard"], params["name"]))
                elif url.path == "/api/panel":
                    uid, key = params.pop("dashboard"), params.pop("key")
                    self._json(state.panel(uid, key, params))
                else:
                    self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found")
            except (KeyError, StopIteration):
                self._send(HTTPStatus.BAD_REQUEST, "text/plain", b"unknown dashboard, panel or variable")

        def _vendor(self, name: str) -> None:
            if name not in VENDOR:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found")
                return
            relative, content_type = VENDOR[name]
            path = NODE_MODULES / relative
            if not path.is_file():
                log.error("%s missing: run make setup", path)
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", MISSING_VENDOR)
                return
            self._send(HTTPStatus.OK, content_type, path.read_bytes())

        def _json(self, body: dict) -> None:
            self._send(HTTPStatus.OK, "application/json", json.dumps(body, allow_nan=False).encode())

        def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the page was closed mid-refresh
                log.debug("client left before %s was answered", self.path)

        def log_message(self, format: str, *args: object) -> None:
            log.debug(format, *args)

    return Handler


def make_server(settings: Settings, port: int | None = None) -> ThreadingHTTPServer:
    """The server bound to ``settings.stack.host`` (loopback by default); ``serve_forever`` runs it."""
    port = settings.metrics.dashboard_port if port is None else port
    server = ThreadingHTTPServer((settings.stack.host, port), handler_for(DashboardState(settings)))
    server.daemon_threads = True
    return server
