"""Gold benchmark: `dbt build` over one day of N silver trades (default 5,000,000, 4 products).

Starts its own SeaweedFS (S3 + Iceberg REST catalog) in a temporary folder, writes N synthetic
silver rows with pyiceberg, then times:
  - baseline: one DuckDB GROUP BY minute (low, high, volume, count) over the same silver table (the
    floor any 1m candle job pays to read and aggregate the data);
  - gold full build: `lakehouse gold` (dbt build: all models, data tests and unit tests);
  - gold incremental: after appending the next hour of trades plus 1% late trades for the 3 hours
    before it (what an hourly run sees).
Prints seconds, the ratio to the baseline, and peak RSS of the dbt process.

    PYTHONPATH=. .venv/bin/python bench/gold.py [--trades 5000000] [--products 4] [--hourly-trades N]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from infrastructure.bootstrap import ensure_tables
from infrastructure.catalog import load_catalog
from infrastructure.tables import SILVER_TRADES
from orchestration.local_stack import launch_seaweedfs, settings_for
from processing.duckdb_engine import connect
from processing.gold import run_gold

PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD")
BASE_PRICES = (65000.0, 3500.0, 150.0, 0.12)
DAY = datetime(2026, 3, 1, tzinfo=UTC)
DAY_S = 86_400
CHUNK = 500_000


def silver_chunk(
    rng: np.random.Generator,
    first_id: int,
    n: int,
    products: int,
    span: tuple[float, float],
    ingest_at: float | None,
) -> pa.Table:
    """n silver rows with event times in DAY + span (seconds), prices as decimal(38,18) (8 decimals),
    ingested 20 ms - 3 s after the event, or all at DAY + ``ingest_at`` (late arrivals)."""
    product = rng.integers(0, products, n)
    seconds = np.sort(rng.uniform(*span, n))
    event_us = (DAY.timestamp() + seconds) * 1e6
    if ingest_at is None:
        ingest_us = event_us + rng.integers(20_000, 3_000_000, n)
    else:
        ingest_us = np.full(n, (DAY.timestamp() + ingest_at) * 1e6)
    base = np.asarray(BASE_PRICES)[product]
    price = np.round(base * (1 + rng.normal(0, 0.01, n)), 8)
    size = np.round(rng.uniform(0.00000001, 2.0, n), 8)
    money = pa.decimal128(38, 18)
    ts = pa.timestamp("us", tz="UTC")
    columns = {
        "exchange": pa.array(np.full(n, "coinbase")),
        "product_id": pa.array(np.asarray(PRODUCTS)[product]),
        "trade_id": pa.array(np.arange(first_id, first_id + n, dtype=np.int64)),
        # a double's binary expansion has ~18 stray digits as a decimal: keep the 8 meant
        "price": pc.round(pa.array(price).cast(money, safe=False), 8),
        "size": pc.round(pa.array(size).cast(money, safe=False), 8),
        "side": pa.array(np.where(rng.random(n) < 0.5, "buy", "sell")),
        "event_time": pa.array(event_us.astype(np.int64)).cast(ts),
        "receive_time": pa.array((event_us + 50_000).astype(np.int64)).cast(ts),
        "ingest_time": pa.array(ingest_us.astype(np.int64)).cast(ts),
        "ingest_latency_ms": pa.array(((ingest_us - event_us) // 1000).astype(np.int64)),
        "sequence": pa.nulls(n, pa.int64()),
        "source": pa.array(np.full(n, "ws")),
        "kafka_topic": pa.array(np.full(n, "crypto.trades")),
        "kafka_partition": pa.array(np.zeros(n, dtype=np.int32)),
        "kafka_offset": pa.array(np.arange(first_id, first_id + n, dtype=np.int64)),
    }
    return pa.Table.from_pydict(columns).cast(SILVER_TRADES.schema.as_arrow())


# No per-trade notional here: DuckDB's exact one (the scale-9 casts) costs ~3 us a value, more than
# the whole read + group, so with it this would not be a floor (gold computes it in Arrow instead).
BASELINE_SQL = """
    select product_id, date_trunc('minute', event_time) as m, min(price), max(price), sum(size), count(*)
    from lake.silver.trades group by all
"""


def slowest(run_results: Path | None, top: int = 5) -> str:
    """The nodes dbt spent most time on, from its run_results.json."""
    if run_results is None:
        return "n/a"
    results = json.loads(run_results.read_text())["results"]
    ranked = sorted(results, key=lambda r: r["execution_time"], reverse=True)[:top]
    return ", ".join(f"{r['unique_id'].split('.')[-1]} {r['execution_time']:.1f}s" for r in ranked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=5_000_000)
    parser.add_argument("--products", type=int, default=4, choices=range(1, len(PRODUCTS) + 1))
    parser.add_argument(
        "--hourly-trades", type=int, default=None, help="incremental step; default trades / 24"
    )
    args = parser.parse_args()
    hourly = args.hourly_trades if args.hourly_trades is not None else args.trades // 24
    rng = np.random.default_rng(42)
    with tempfile.TemporaryDirectory(prefix="bench-gold-") as tmp:
        seaweedfs = launch_seaweedfs(Path(tmp) / "seaweedfs")
        try:
            settings = settings_for(seaweedfs=seaweedfs, data_dir=Path(tmp) / "data", products=list(PRODUCTS))
            catalog = load_catalog(settings)
            ensure_tables(catalog)
            table = catalog.load_table(SILVER_TRADES.identifier)
            started = time.monotonic()
            for first in range(0, args.trades, CHUNK):
                table.append(
                    silver_chunk(rng, first, min(CHUNK, args.trades - first), args.products, (0, DAY_S), None)
                )
            load_s = time.monotonic() - started
            print(
                f"loaded {args.trades:,} silver trades ({args.products} products, one day) in {load_s:.1f}s"
            )

            con = connect(settings)
            started = time.monotonic()
            minutes = len(con.execute(BASELINE_SQL).fetchall())
            baseline_s = time.monotonic() - started
            con.close()
            print(f"baseline  DuckDB GROUP BY minute over silver: {baseline_s:.2f}s ({minutes:,} minutes)")

            full = run_gold(settings)
            assert full.success, full.summary()
            print(
                f"gold full build (dbt build, {sum(full.statuses.values())} nodes): {full.seconds:.1f}s"
                f" = {full.seconds / baseline_s:.1f}x baseline"
            )
            print("  slowest nodes:", slowest(full.run_results))
            if hourly:
                # the next hour's trades, plus 1% late ones for the 3 hours before, ingested an hour later
                nxt = (DAY_S, DAY_S + 3600)
                table.append(silver_chunk(rng, args.trades, hourly, args.products, nxt, None))
                late = max(1, hourly // 100)
                before = (DAY_S - 3 * 3600, DAY_S)
                table.append(
                    silver_chunk(rng, args.trades + hourly, late, args.products, before, DAY_S + 3600)
                )
                inc = run_gold(settings)
                assert inc.success, inc.summary()
                print(
                    f"gold incremental, next hour ({hourly:,} trades + {late:,} late): {inc.seconds:.1f}s"
                    f" = {inc.seconds / baseline_s:.1f}x baseline"
                )
                print("  slowest nodes:", slowest(inc.run_results))
            peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"peak RSS of a dbt build process: {peak_mib:,.0f} MiB")
        finally:
            seaweedfs.stop()


if __name__ == "__main__":
    main()
