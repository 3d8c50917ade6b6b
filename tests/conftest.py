"""Test tiers come from the folder (tests/unit -> unit, ...); fixtures live per domain in tests/fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# one fixture module per domain, one line each
pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.airflow",
    "tests.fixtures.spark",
    "tests.fixtures.compose",
    "tests.fixtures.coinbase",
    "tests.fixtures.binance",
    "tests.fixtures.coingecko",
    "tests.fixtures.lakehouse",
    "tests.fixtures.gold",
    "tests.fixtures.bronze",
    "tests.fixtures.monitoring",
    "tests.fixtures.faults",
    "tests.fixtures.pipeline",
]

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
