"""Refinement benchmark: one day of bronze (N trades, 4 products, 1% duplicates) -> silver -> gold.

    .venv/bin/python -m bench.refine --trades 5000000

Starts its own SeaweedFS (S3 + Iceberg REST catalog) on free loopback ports in a temporary folder,
generates bronze in bulk (vectorized Arrow, appended with pyiceberg in large batches), refines the
day with the embedded engine, and measures, as the baseline in the same run, DuckDB reading the
same bronze data files directly with ``SELECT DISTINCT ON`` the key: the floor for silver (no
parsing, no validation, no merge, no write). Prints seconds per step, the silver/baseline ratio
and each step's peak RSS: every step runs in a fresh child process, as an hourly job would, so one
step's memory does not inflate the next one's figure.

Gold is ``lakehouse gold`` (a full ``dbt build``: every model, data test and unit test) over the
silver just made; its peak RSS is the dbt process's.

Steps are entries of ``STEPS``: a function taking the ``Bench`` and returning figures to print
(``seconds`` is the step's own timing).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.gold import slowest
from infrastructure.bootstrap import ensure_tables
from infrastructure.catalog import load_catalog
from infrastructure.settings import Settings
from infrastructure.tables import BRONZE_TRADES
from infrastructure.times import Window
from orchestration.local_stack import launch_seaweedfs, settings_for
from processing import duckdb_engine
from processing.gold import run_gold
from processing.silver.duckdb_runner import run_duckdb
from processing.silver.result import SilverTables
from processing.silver.sql import KEY

BRONZE_ARROW = BRONZE_TRADES.schema.as_arrow()
PRODUCTS = {"BTC-USD": 97_000, "ETH-USD": 3_000, "SOL-USD": 200, "DOGE-USD": 0.35}
DAY = datetime(2026, 1, 1, tzinfo=UTC)
SCALE = 8  # digits after the point in generated prices and sizes
APPEND_ROWS = 1_000_000


@dataclass
class Bench:
    settings: Settings
    tables: SilverTables
    trades: int
    dup_rate: float
    seed: int


def _decimal_strings(units: np.ndarray) -> pa.Array:
    """Integers in 10^-SCALE units -> plain decimal strings ("97000.00000123"), exactly, in bulk."""
    digits = pc.utf8_lpad(pc.cast(pa.array(units), pa.string()), SCALE + 1, "0")
    return pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(digits, 0, -SCALE), pc.utf8_slice_codeunits(digits, -SCALE), "."
    )


def _times(micros: np.ndarray) -> pa.Array:
    return pa.array(micros, pa.timestamp("us", tz="UTC"))


def generate_bronze(trades: int, dup_rate: float, seed: int) -> pa.Table:
    """``trades`` bronze rows over one day: distinct trades plus ``dup_rate`` of them again, half as
    Kafka re-deliveries (ws, seconds later) and half as REST backfills (minutes later)."""
    rng = np.random.default_rng(seed)
    duplicates = int(trades * dup_rate)
    unique = trades - duplicates
    names = list(PRODUCTS)
    product = np.arange(unique) % len(names)  # product i lives in Kafka partition i (keyed by product)
    trade_id = np.arange(unique) // len(names) + 1
    day_us = int(DAY.timestamp() * 1e6)
    event = day_us + np.sort(rng.integers(0, 86_400 * 10**6, unique))
    base = np.array([int(PRODUCTS[n] * 10**SCALE) for n in names])
    price = base[product] + rng.integers(-1000, 1000, unique) * (base[product] // 100_000)  # within 1%
    size = rng.integers(1, 10 * 10**SCALE, unique)
    ingest = event + rng.integers(50_000, 500_000, unique)  # 50-500 ms after the trade
    source = np.zeros(unique, dtype=np.int8)  # 0 ws, 1 backfill

    copy = rng.choice(unique, duplicates, replace=False)
    backfill = rng.random(duplicates) < 0.5
    late_by = np.where(backfill, rng.integers(60, 1800, duplicates), rng.integers(1, 60, duplicates)) * 10**6
    product, trade_id, event, price, size = (
        np.concatenate([a, a[copy]]) for a in (product, trade_id, event, price, size)
    )
    ingest = np.concatenate([ingest, ingest[copy] + late_by])
    source = np.concatenate([source, backfill.astype(np.int8)])

    # Kafka offsets count up per partition in ingest order, as the bronze writer would read them
    order = np.lexsort((ingest, product))
    product, trade_id, event, price, size, ingest, source = (
        a[order] for a in (product, trade_id, event, price, size, ingest, source)
    )
    first = np.searchsorted(product, product)
    offset = np.arange(trades) - first

    products = pa.DictionaryArray.from_arrays(pa.array(product.astype(np.int32)), pa.array(names)).cast(
        pa.string()
    )
    ids = pc.cast(pa.array(trade_id), pa.string())
    prices, sizes = _decimal_strings(price), _decimal_strings(size)
    raw = pc.binary_join_element_wise(
        '{"type":"match","trade_id":', ids, ',"product_id":"', products, '","price":"', prices,
        '","size":"', sizes, '"}', "",
    )  # fmt: skip
    sources = pa.DictionaryArray.from_arrays(pa.array(source), pa.array(["ws", "backfill"])).cast(pa.string())
    sides = pa.DictionaryArray.from_arrays(
        pa.array(rng.integers(0, 2, trades).astype(np.int8)), pa.array(["buy", "sell"])
    ).cast(pa.string())
    columns = {
        "exchange": pa.repeat(pa.scalar("coinbase"), trades),
        "product_id": products,
        "trade_id": pa.array(trade_id),
        "price": prices,
        "size": sizes,
        "side": sides,
        "event_time": _times(event),
        "receive_time": _times(event + 20_000),
        "sequence": pa.nulls(trades, pa.int64()),
        "source": sources,
        "raw": raw,
        "kafka_topic": pa.repeat(pa.scalar("crypto.trades"), trades),
        "kafka_partition": pa.array(product.astype(np.int32)),
        "kafka_offset": pa.array(offset),
        "kafka_timestamp": _times(ingest - 10_000),
        "ingest_time": _times(ingest),
    }
    return pa.table(columns).cast(BRONZE_ARROW)


def step_bronze(bench: Bench) -> dict[str, float]:
    began = time.perf_counter()
    data = generate_bronze(bench.trades, bench.dup_rate, bench.seed)
    generated = time.perf_counter()
    table = load_catalog(bench.settings).load_table(bench.tables.bronze)
    for start in range(0, data.num_rows, APPEND_ROWS):
        table.append(data.slice(start, APPEND_ROWS))
    appended = time.perf_counter()
    return {
        "seconds": appended - began,
        "generate_s": generated - began,
        "append_s": appended - generated,
        "rows": data.num_rows,
    }


def step_silver(bench: Bench) -> dict[str, float]:
    # the day's ingest times, plus the hour the last backfills and re-deliveries arrive in
    result = run_duckdb(bench.settings, Window(DAY, DAY + timedelta(days=1, hours=1)), bench.tables)
    assert result.bronze_rows == bench.trades, result
    return {
        "seconds": result.duration_s,
        "commit_s": result.commit_s,
        "rows_out": result.written,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
    }


def step_baseline(bench: Bench) -> dict[str, float]:
    """DuckDB over the same bronze parquet files, DISTINCT ON the key, materialized: the floor."""
    table = load_catalog(bench.settings).load_table(bench.tables.bronze)
    files = [task.file.file_path for task in table.scan().plan_files()]
    con = duckdb_engine.connect(bench.settings)
    con.execute("SET enable_progress_bar = false")
    key = ", ".join(KEY)
    began = time.perf_counter()
    con.execute(
        f"""CREATE TEMP TABLE floor AS
            SELECT DISTINCT ON ({key}) * EXCLUDE (raw) FROM read_parquet(?)
            ORDER BY {key}, kafka_partition, kafka_offset""",
        [files],
    )
    seconds = time.perf_counter() - began
    (rows,) = con.execute("SELECT count(*) FROM floor").fetchone()
    con.close()
    return {"seconds": seconds, "rows_out": rows, "files": len(files)}


def step_gold(bench: Bench) -> dict[str, float | str]:
    """``dbt build`` of every gold model and test over the silver day, as ``lakehouse gold`` runs it."""
    result = run_gold(bench.settings)
    assert result.success, result.summary()
    return {
        "seconds": result.seconds,
        "nodes": sum(result.statuses.values()),
        "slowest": slowest(result.run_results, 3),
    }


STEPS: list[tuple[str, Callable[[Bench], dict[str, float]]]] = [
    ("bronze", step_bronze),
    ("silver", step_silver),
    ("baseline", step_baseline),
    ("gold", step_gold),
]


def peak_rss_mib() -> float:
    """This process's peak, or its largest child's (gold's dbt) if that was larger."""
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return peak / 1024  # Linux reports KiB


def _in_child(step: Callable[[Bench], dict[str, float]], bench: Bench) -> tuple[dict[str, float], float]:
    figures = step(bench)
    return figures, peak_rss_mib()


def _shown(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=5_000_000, help="bronze rows, duplicates included")
    parser.add_argument("--dup-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-refine-") as tmp:
        store = launch_seaweedfs(Path(tmp))
        try:
            settings = settings_for(seaweedfs=store, data_dir=Path(tmp))
            ensure_tables(load_catalog(settings))  # the contract tables: gold's dbt sources read them
            tables = SilverTables()
            bench = Bench(settings, tables, args.trades, args.dup_rate, args.seed)
            print(f"refine benchmark: {args.trades:,} bronze trades, {len(PRODUCTS)} products, one day, "
                  f"{args.dup_rate:.0%} duplicates")  # fmt: skip
            seconds: dict[str, float] = {}
            peaks: dict[str, float] = {}
            spawn = multiprocessing.get_context("spawn")
            for name, step in STEPS:
                with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as child:
                    figures, peaks[name] = child.submit(_in_child, step, bench).result()
                seconds[name] = figures.pop("seconds")
                shown = "  ".join(f"{k}={_shown(v)}" for k, v in figures.items())
                print(
                    f"{name:<9} {seconds[name]:8.2f} s   peak_rss={peaks[name]:,.0f} MiB   {shown}",
                    flush=True,
                )
            if {"silver", "baseline"} <= seconds.keys():
                ratio = seconds["silver"] / seconds["baseline"]
                print(f"silver / baseline (DISTINCT ON over the same files) = {ratio:.2f}x")
            pipeline = {name: mib for name, mib in peaks.items() if name != "baseline"}
            print(f"peak RSS of any pipeline step ({', '.join(pipeline)}): {max(pipeline.values()):,.0f} MiB")
        finally:
            store.stop()


if __name__ == "__main__":
    main()
