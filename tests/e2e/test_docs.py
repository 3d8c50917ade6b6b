"""``lakehouse docs`` (``make docs``) on a stack with data: dbt's docs site with a catalog read from the
warehouse, Great Expectations Data Docs with the suites and the last quality run, one index over
both, served on loopback."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest

from orchestration.cli.docs import make_server
from tests.fixtures.pipeline import STACK_TIMEOUT_S, PipelineStack

SUITES = ("silver_trades", "gold_ohlcv_1m", "gold_ohlcv_1h", "reconciliation")


@pytest.mark.timeout(STACK_TIMEOUT_S)
def test_docs_builds_both_sites_under_the_data_folder(pipeline_stack: PipelineStack) -> None:
    done = pipeline_stack.lakehouse("docs", "--no-serve")
    root = pipeline_stack.settings.data_dir / "docs"
    dbt = root / "dbt"
    assert str(dbt / "index.html") in done.stdout
    assert (dbt / "index.html").is_file()
    # the catalog was read from the warehouse: gold's tables with their real columns
    catalog = json.loads((dbt / "catalog.json").read_text())
    candles = next(n for key, n in catalog["nodes"].items() if key.endswith(".ohlcv_1m"))
    assert {"open", "high", "low", "close", "vwap"} <= set(candles["columns"])
    manifest = json.loads((dbt / "manifest.json").read_text())
    assert any(key.endswith(".pipeline_health") for key in manifest["nodes"])

    quality = root / "great_expectations"
    index = (quality / "index.html").read_text()
    assert "(1 quality run(s))" in done.stdout
    for suite in SUITES:
        assert (quality / "expectations" / f"{suite}.html").is_file(), suite
        pages = list((quality / "validations" / suite).rglob("*.html"))
        assert len(pages) == 1, (suite, pages)  # the one quality run the fixture made
        assert suite in index

    # a second build replaces the first (the GE context is rebuilt, not appended to)
    pipeline_stack.lakehouse("docs", "--no-serve")
    assert len(list((quality / "validations" / "silver_trades").rglob("*.html"))) == 1

    server = make_server(pipeline_stack.settings, root, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        for path in ("/", "/dbt/index.html", "/dbt/catalog.json", "/great_expectations/index.html"):
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as response:
                assert response.status == 200, path
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as response:
            landing = response.read().decode()
        assert 'href="dbt/index.html"' in landing and 'href="great_expectations/index.html"' in landing
        assert 'href="great_expectations/validations/silver_trades/' in landing  # readable offline
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
