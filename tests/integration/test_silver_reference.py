"""``silver.reference_prices`` from bronze rows: typed to decimal(38,18) exactly, one row per
(source, coin_id, vs_currency, event_time) whatever the copies, invalid rows counted and left out,
a re-run changing nothing, and a later window's copy of a known key left as it is."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from infrastructure.bootstrap import ensure_tables
from infrastructure.catalog import load_catalog
from infrastructure.tables import BRONZE_REFERENCE_PRICES, SILVER_REFERENCE_PRICES
from infrastructure.times import Window
from processing.bronze.reference_rows import ARROW_SCHEMA
from processing.silver.reference import run_reference_silver
from tests.fixtures.services import settings_for


def row(
    offset: int,
    ingest: datetime,
    event: datetime,
    price: str,
    source: str = "coingecko",
    coin: str = "bitcoin",
):
    return {
        "source": source, "coin_id": coin, "vs_currency": "usd",
        "product_id": "BTC-USD" if coin == "bitcoin" else "ETH-USD", "price": price,
        "event_time": event, "receive_time": event + timedelta(seconds=2), "raw": "{}",
        "kafka_topic": "ref-test", "kafka_partition": 0, "kafka_offset": offset,
        "kafka_timestamp": ingest, "ingest_time": ingest,
    }  # fmt: skip


@pytest.fixture
def lake(seaweedfs, tmp_path: Path):
    settings = settings_for(None, seaweedfs, data_dir=tmp_path / "data")
    ensure_tables(load_catalog(settings))
    return settings


def test_reference_prices_are_typed_deduplicated_and_validated(lake) -> None:
    catalog = load_catalog(lake)
    bronze = catalog.load_table(BRONZE_REFERENCE_PRICES.identifier)
    # an hour of its own in the shared table
    hour = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(hours=random.randrange(100_000))
    event = hour - timedelta(minutes=5)
    base = random.randrange(1 << 40)
    rows = [
        row(base + 0, hour + timedelta(minutes=1), event, "67187.335839807412345678"),
        row(
            base + 1, hour + timedelta(minutes=2), event, "67187.335839807412345678"
        ),  # the cached answer again
        row(
            base + 2,
            hour + timedelta(minutes=2),
            event,
            "67187.335839807412345678",
            source="synthetic-coingecko",
        ),
        row(base + 3, hour + timedelta(minutes=3), event + timedelta(seconds=60), "67190.01"),
        row(base + 4, hour + timedelta(minutes=3), event, "3321.82", coin="ethereum"),
        row(base + 5, hour + timedelta(minutes=4), event + timedelta(seconds=90), "0"),
        row(base + 6, hour + timedelta(minutes=4), event + timedelta(seconds=91), "-1.5"),
        row(base + 7, hour + timedelta(minutes=4), event + timedelta(seconds=92), "1e5"),
        row(base + 8, hour + timedelta(minutes=70), event + timedelta(seconds=60), "67190.01"),  # next hour
    ]
    bronze.append(pa.Table.from_pylist(rows, schema=ARROW_SCHEMA))

    window = Window(hour, hour + timedelta(hours=1))
    result = run_reference_silver(lake, window)
    assert (result.bronze_rows, result.rejected, result.duplicates, result.inserted, result.unchanged) == (
        8,
        3,
        1,
        4,
        0,
    )

    silver = catalog.load_table(SILVER_REFERENCE_PRICES.identifier)
    mine = (
        silver.scan(row_filter=f"kafka_offset >= {base} and kafka_offset < {base + 9}").to_arrow().to_pylist()
    )
    got = sorted((r["source"], r["coin_id"], r["event_time"], r["price"], r["kafka_offset"]) for r in mine)
    assert got == sorted([
        ("coingecko", "bitcoin", event, Decimal("67187.335839807412345678"), base + 0),
        ("synthetic-coingecko", "bitcoin", event, Decimal("67187.335839807412345678"), base + 2),
        ("coingecko", "bitcoin", event + timedelta(seconds=60), Decimal("67190.010000000000000000"), base + 3),
        ("coingecko", "ethereum", event, Decimal("3321.820000000000000000"), base + 4),
    ])  # fmt: skip

    snapshot = silver.refresh().current_snapshot()
    again = run_reference_silver(lake, window)
    assert (again.inserted, again.unchanged, again.duplicates) == (0, 4, 1)
    assert silver.refresh().current_snapshot() == snapshot  # nothing to change: no commit

    later = run_reference_silver(lake, Window(hour + timedelta(hours=1), hour + timedelta(hours=2)))
    assert (later.bronze_rows, later.inserted, later.unchanged) == (1, 0, 1)  # a known key stays as it was
