"""``lakehouse dashboard``: serve the local dashboard page (``monitoring/dashboard/``) until Ctrl-C."""

from __future__ import annotations

from http.server import HTTPServer

import click


@click.command("dashboard")
@click.option("--port", type=int, default=None, help="Port (default: LAKEHOUSE_METRICS__DASHBOARD_PORT).")
def dashboard_command(port: int | None) -> None:
    """Market Overview and Pipeline Health on http://127.0.0.1:<port>/ (DuckDB + Prometheus)."""
    from infrastructure.settings import load_settings
    from monitoring.dashboard.server import make_server

    serve(make_server(load_settings(), port), "dashboard")


def serve(server: HTTPServer, what: str) -> None:
    """Say where ``server`` listens and serve until Ctrl-C (shared by the local web pages)."""
    host, bound = server.server_address[:2]
    click.echo(f"{what} on http://{host}:{bound}/ (Ctrl-C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
