"""Completeness benchmark: the trade-id gap finder over a day of silver, and the gap table's size
over many hourly checks.

    .venv/bin/python -m bench.completeness --trades-per-hour 200000 --hours 2000

1. Speed: silver-shaped rows for 25 hours (the checked hour plus the 24 h lookback), 4 products,
   one hole in every thousand ids, in DuckDB in process. Times :func:`holes_sql` for the last hour
   and, as the baseline in the same run, a plain per-product count over the same rows (a scan and
   an aggregate: the floor for any query that reads them). Prints both and the ratio.
2. Soak: ``--hours`` simulated hourly checks, each finding two new holes and filling those of the
   hour before, through :func:`reconcile` with the default 30-day retention. Prints the table's
   row count along the way: it must level off (closed rows age out), not grow with the run.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa

from infrastructure.settings import CompletenessSettings
from processing.silver import completeness as c
from processing.silver.sql import to_dialect

PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD")
END = datetime(2026, 1, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)
LOOKBACK = timedelta(hours=24)


def silver_rows(per_hour: int) -> pa.Table:
    """25 hours of trades per product, ids consecutive but for one missing id in every 1000."""
    hours = 25
    n = per_hour * hours // len(PRODUCTS)
    start = END - hours * HOUR
    micros = np.sort(np.random.default_rng(1).integers(0, hours * 3600 * 10**6, n))
    ids = np.arange(n, dtype=np.int64) + 10**9
    ids = ids + ids // 1000 - 10**6  # every 1000th id skipped: a hole of one
    columns: dict[str, list] = {
        "exchange": [],
        "product_id": [],
        "trade_id": [],
        "event_time": [],
        "source": [],
    }
    for product in PRODUCTS:
        columns["exchange"].append(pa.array(["coinbase"] * n))
        columns["product_id"].append(pa.array([product] * n))
        columns["trade_id"].append(pa.array(ids))
        columns["event_time"].append(
            pa.array(start.timestamp() * 10**6 + micros, pa.int64()).cast(pa.timestamp("us", "UTC"))
        )
        columns["source"].append(pa.array(["ws"] * n))
    return pa.table({k: pa.concat_arrays(v) for k, v in columns.items()})


def speed(per_hour: int) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("rows", silver_rows(per_hour))
    con.execute("CREATE TABLE silver AS SELECT * FROM rows")
    (total,) = con.execute("SELECT count(*) FROM silver").fetchone()
    query = to_dialect(c.holes_sql("silver", END - HOUR, END, LOOKBACK), "duckdb")
    baseline = "SELECT exchange, product_id, count(*), max(trade_id) FROM silver GROUP BY 1, 2"
    timings = {}
    for name, sql in (("baseline", baseline), ("holes", query)):
        con.execute(sql).fetchall()  # warm
        began = time.perf_counter()
        for _ in range(3):
            result = con.execute(sql).fetchall()
        timings[name] = (time.perf_counter() - began) / 3
        if name == "holes":
            print(f"holes found in the last hour: {len(result)}")
    print(f"silver rows read: {total:,} (25 h x {len(PRODUCTS)} products)")
    print(f"baseline (scan + per-product count): {timings['baseline'] * 1000:.1f} ms")
    print(f"gap finder (hour + 24 h lookback):   {timings['holes'] * 1000:.1f} ms")
    print(f"ratio gap finder / baseline: {timings['holes'] / timings['baseline']:.2f}")


def soak(hours: int) -> None:
    retention = timedelta(days=CompletenessSettings().retention_days)
    rows: list[c.GapRow] = []
    start = END
    report = {hours // 4, hours // 2, 3 * hours // 4, hours}
    for h in range(1, hours + 1):
        now = start + h * HOUR
        hour = now - HOUR
        base = h * 10_000
        new = [c.Hole("coinbase", p, base + i, base + i + 4, hour) for i, p in enumerate(PRODUCTS[:2])]
        # the holes of the hour before were backfilled: every id of each open row is present now
        present = {i: r.hole.count for i, r in enumerate(rows) if r.status == c.OPEN}
        rows = c.reconcile(rows, present, new, [], now, retention)
        if h in report:
            open_rows = sum(r.status == c.OPEN for r in rows)
            print(f"after {h:>6} hourly checks: {len(rows):>5} rows in silver.trade_gaps ({open_rows} open)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trades-per-hour", type=int, default=200_000)
    parser.add_argument("--hours", type=int, default=2_000)
    args = parser.parse_args()
    speed(args.trades_per_hour)
    soak(args.hours)


if __name__ == "__main__":
    main()
