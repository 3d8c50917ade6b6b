"""Write-audit-publish benchmark: what staging, auditing and publishing cost an hourly run.

Starts two SeaweedFS stacks (S3 + Iceberg REST catalog) in a temporary folder and writes the same
synthetic bronze hours into both, then runs each hour through
  - baseline: the run without write-audit-publish (silver and gold to main, then the suites);
  - staged: silver onto its audit branch, gold into gold_audit, the suites on the staged state,
    then publish (what crypto_hourly runs).
Prints seconds per hour and step, the ratio staged / baseline, what each publish copied, and the
refs and snapshots left on the tables afterwards (what must not grow with the hours).

    PYTHONPATH=. .venv/bin/python bench/wap.py [--hours 3] [--trades-per-hour 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyiceberg.exceptions import NoSuchTableError

from infrastructure import services
from infrastructure.bootstrap import ensure_tables
from infrastructure.catalog import load_catalog
from infrastructure.tables import BRONZE_TRADES, SILVER_TRADES
from infrastructure.times import Window
from orchestration.local_stack import launch_seaweedfs, settings_for
from processing import wap
from processing.gold import gold_job
from processing.silver.run import silver_job
from quality.audit import audit_job, publish_hour
from quality.checks import quality_job

PRODUCTS = ("BTC-USD", "ETH-USD")
H0 = datetime(2026, 3, 1, tzinfo=UTC)


def bronze_hour(n: int, trades: int, rng: np.random.Generator) -> pa.Table:
    """``trades`` bronze rows ingested in hour ``n``, ids consecutive per product."""
    start = H0 + timedelta(hours=n)
    seconds = np.sort(rng.uniform(0, 3600, trades))
    product = rng.integers(0, len(PRODUCTS), trades)
    rows = []
    for i in range(trades):
        ingest = start + timedelta(seconds=float(seconds[i]))
        event = ingest - timedelta(milliseconds=250)
        trade_id = n * trades + i
        rows.append({
            "exchange": "coinbase", "product_id": PRODUCTS[product[i]], "trade_id": trade_id,
            "price": f"{(100 + (trade_id * 37) % 50)}.{trade_id % 100:02d}", "size": f"0.{1 + trade_id % 999:03d}",
            "side": "buy" if trade_id % 2 else "sell", "event_time": event, "receive_time": event,
            "sequence": None, "source": "ws", "raw": "{}", "kafka_topic": "crypto.trades",
            "kafka_partition": 0, "kafka_offset": trade_id, "kafka_timestamp": event, "ingest_time": ingest,
        })  # fmt: skip
    return pa.Table.from_pylist(rows, schema=BRONZE_TRADES.schema.as_arrow())


def timed(steps: dict[str, float], name: str, run):
    began = time.perf_counter()
    result = run()
    steps[name] = time.perf_counter() - began
    return result


def baseline_hour(settings, window: Window) -> dict[str, float]:
    steps: dict[str, float] = {}
    timed(steps, "silver", lambda: silver_job(settings, window))
    assert timed(steps, "gold", lambda: gold_job(settings, window.end)).success
    assert timed(steps, "quality", lambda: quality_job(settings, window)).success
    return steps


def staged_hour(settings, window: Window) -> tuple[dict[str, float], dict[str, str]]:
    steps: dict[str, float] = {}
    timed(steps, "silver", lambda: silver_job(settings, window, staged=True))
    assert timed(steps, "gold", lambda: gold_job(settings, window.end, staged_hour=window.start)).success
    assert timed(steps, "quality", lambda: audit_job(settings, window)).success
    published = timed(steps, "publish", lambda: publish_hour(settings, window))
    return steps, published.gold


def leftovers(settings) -> list[str]:
    catalog = load_catalog(settings)
    lines = []
    for identifier in (SILVER_TRADES.identifier, "gold.ohlcv_1m", f"{wap.AUDIT_NAMESPACE}.ohlcv_1m"):
        try:
            table = catalog.load_table(identifier)
        except NoSuchTableError:  # the baseline stack has no gold_audit
            continue
        lines.append(
            f"  {identifier}: {len(table.snapshots())} snapshots, refs {sorted(table.metadata.refs)}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=int, default=3)
    parser.add_argument("--trades-per-hour", type=int, default=20_000)
    args = parser.parse_args()
    rng = np.random.default_rng(14)
    hours = [bronze_hour(n, args.trades_per_hour, rng) for n in range(args.hours)]
    with tempfile.TemporaryDirectory(prefix="bench-wap-") as tmp:
        root = Path(tmp)
        stacks = {}
        try:
            for name in ("baseline", "staged"):
                store = launch_seaweedfs(root / f"{name}-seaweedfs")
                settings = settings_for(
                    seaweedfs=store, data_dir=root / f"{name}-data", products=list(PRODUCTS),
                    metrics={"pushgateway_url": f"http://127.0.0.1:{services.free_port()}"},
                )  # fmt: skip
                ensure_tables(load_catalog(settings))
                stacks[name] = (store, settings)
            totals = {"baseline": 0.0, "staged": 0.0}
            for n, rows in enumerate(hours):
                window = Window(H0 + timedelta(hours=n), H0 + timedelta(hours=n + 1))
                for _store, settings in stacks.values():
                    load_catalog(settings).load_table(BRONZE_TRADES.identifier).append(rows)
                base = baseline_hour(stacks["baseline"][1], window)
                staged, copied = staged_hour(stacks["staged"][1], window)
                totals["baseline"] += sum(base.values())
                totals["staged"] += sum(staged.values())
                print(f"hour {n} ({rows.num_rows} trades):")
                print(
                    "  baseline "
                    + ", ".join(f"{k} {v:.2f}s" for k, v in base.items())
                    + f" = {sum(base.values()):.2f}s"
                )
                print(
                    "  staged   "
                    + ", ".join(f"{k} {v:.2f}s" for k, v in staged.items())
                    + f" = {sum(staged.values()):.2f}s"
                )
                print(f"  ratio staged/baseline {sum(staged.values()) / sum(base.values()):.2f}")
                print("  publish copied: " + ", ".join(f"{k} {v}" for k, v in sorted(copied.items())))
            print(
                f"total: baseline {totals['baseline']:.1f}s, staged {totals['staged']:.1f}s, "
                f"ratio {totals['staged'] / totals['baseline']:.2f}"
            )
            for name, (_store, settings) in stacks.items():
                print(f"{name} after {args.hours} hours:")
                print("\n".join(leftovers(settings)))
        finally:
            for store, _settings in stacks.values():
                store.stop()


if __name__ == "__main__":
    main()
