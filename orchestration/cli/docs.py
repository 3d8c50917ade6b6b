"""``lakehouse docs`` (``make docs``): dbt's model docs and Great Expectations' Data Docs for this
stack, built under ``<data_dir>/docs/`` and served on 127.0.0.1 until Ctrl-C.

The stages build their parts (``processing.gold.generate_docs``, ``quality.data_docs``); this
module puts one index page over both and serves the folder with the standard library's server.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click

from infrastructure.settings import Settings


@dataclass(frozen=True)
class DocsSite:
    root: Path  # <data_dir>/docs
    dbt_index: Path
    quality_index: Path
    quality_runs: int
    # GE's own index lists its pages with scripts from public CDNs, so offline it shows none:
    # the landing page links each suite and validation page itself (static HTML)
    quality_pages: tuple[Path, ...] = ()


def docs_dir(settings: Settings) -> Path:
    return settings.data_dir / "docs"


def index_page(site: DocsSite) -> str:
    """The landing page linking both sites (pure)."""
    runs = (
        f"the suites and the newest {site.quality_runs} quality run(s)"
        if site.quality_runs
        else "the suites (no quality run yet: `lakehouse quality` or the hourly DAG writes results)"
    )
    links = (
        (site.dbt_index, "dbt docs", "gold models, their lineage from bronze and silver, columns and tests"),
        (site.quality_index, "Great Expectations Data Docs", runs),
    )
    items = "\n".join(
        f'<li><a href="{_href(site, path)}">{title}</a>: {html.escape(what)}</li>'
        for path, title, what in links
    )
    pages = "\n".join(
        f'<li><a href="{_href(site, page)}">{html.escape(str(page.relative_to(site.quality_index.parent)))}</a></li>'
        for page in site.quality_pages
    )
    if pages:
        items += f"\n<li>Great Expectations pages:<ul>\n{pages}\n</ul></li>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>lakehouse-crypto docs</title></head>"
        f"<body><h1>lakehouse-crypto docs</h1><ul>\n{items}\n</ul></body></html>\n"
    )


def _href(site: DocsSite, path: Path) -> str:
    return html.escape(path.relative_to(site.root).as_posix())


def build_docs(settings: Settings) -> DocsSite:
    """dbt docs into ``<data_dir>/docs/dbt/``, Data Docs into ``<data_dir>/docs/great_expectations/``,
    and ``<data_dir>/docs/index.html`` over both. Needs the stack up (dbt reads the catalog)."""
    from processing.gold import generate_docs
    from quality.data_docs import build_data_docs

    root = docs_dir(settings)
    dbt_index = generate_docs(settings, root / "dbt")
    quality = build_data_docs(settings, root / "great_expectations")
    ge_root = quality.index.parent
    pages = (*sorted(ge_root.glob("expectations/*.html")), *sorted(ge_root.glob("validations/**/*.html")))
    site = DocsSite(root, dbt_index, quality.index, quality.runs, pages)
    (root / "index.html").write_text(index_page(site))
    return site


def make_server(settings: Settings, root: Path, port: int | None = None) -> ThreadingHTTPServer:
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    return ThreadingHTTPServer(
        (settings.stack.host, settings.stack.docs_port if port is None else port), handler
    )


@click.command("docs")
@click.option("--port", type=int, default=None, help="Port (default: LAKEHOUSE_STACK__DOCS_PORT).")
@click.option("--no-serve", is_flag=True, help="Build the docs and exit.")
def docs_command(port: int | None, no_serve: bool) -> None:
    """Build dbt docs and Great Expectations Data Docs under <data_dir>/docs/ and serve them."""
    from infrastructure.settings import load_settings
    from orchestration.cli.dashboard import serve
    from processing.gold import DbtDocsError

    settings = load_settings()
    click.echo("building dbt docs (dbt docs generate) and Great Expectations Data Docs ...")
    try:
        site = build_docs(settings)
    except DbtDocsError as exc:
        raise click.ClickException(f"{exc}\n(is the stack up? `lakehouse up`)") from None
    click.echo(f"dbt docs          {site.dbt_index}")
    click.echo(f"Data Docs         {site.quality_index} ({site.quality_runs} quality run(s))")
    if no_serve:
        return
    serve(make_server(settings, site.root, port), "docs")
