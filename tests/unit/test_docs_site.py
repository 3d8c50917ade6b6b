"""The pure parts of ``lakehouse docs``: which quality runs the Data Docs keep, and the landing page."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from orchestration.cli.docs import DocsSite, index_page
from quality.data_docs import newest_results


def test_data_docs_keep_only_the_newest_runs(tmp_path: Path) -> None:
    for i in range(5):
        path = tmp_path / f"window{i}.json"
        path.write_text("{}")
        os.utime(path, (1_000 + i, 1_000 + i))
    kept = newest_results(tmp_path, keep=3)
    assert [p.name for p in kept] == ["window2.json", "window3.json", "window4.json"]
    assert newest_results(tmp_path, keep=0) == []
    assert newest_results(tmp_path / "none") == []


def test_the_landing_page_links_both_sites_relatively(tmp_path: Path) -> None:
    site = DocsSite(
        tmp_path, tmp_path / "dbt" / "index.html", tmp_path / "great_expectations" / "index.html", 0
    )
    page = index_page(site)
    assert 'href="dbt/index.html"' in page and 'href="great_expectations/index.html"' in page
    assert "no quality run yet" in page
    assert "newest 3 quality run(s)" in index_page(replace(site, quality_runs=3))
    page = (
        tmp_path / "great_expectations" / "validations" / "silver_trades" / "w" / "t" / "silver_trades.html"
    )
    # GE's own index needs scripts from CDNs to list its pages, so the landing page lists them
    assert 'href="great_expectations/validations/silver_trades/w/t/silver_trades.html"' in index_page(
        replace(site, quality_pages=(page,))
    )
