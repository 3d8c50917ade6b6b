"""``gold.price_deviation_1m`` against an independent ``Decimal`` computation over the raw trades and
reference prices: every venue's 1-minute VWAP against the latest reference at or before the
minute's end (within the staleness bound), and against the other venue of the same product, after
a first build and an incremental build that absorbed late trades on one venue only. Synthetic and
real venues never meet; BTC-USD and BTC-USDT are different products. The alert facts pushed by
gold carry the largest and the sustained deviation."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from infrastructure.bootstrap import ensure_tables
from infrastructure.catalog import load_catalog
from infrastructure.settings import Settings
from processing.duckdb_engine import connect
from processing.gold import alert_facts, run_gold
from tests.fixtures.gold import RawTrade, Reference, append_batch, append_references
from tests.fixtures.services import launch_seaweedfs, settings_for
from tests.integration.test_gold import divide

START = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)
MINUTES = 30
STALE_MINUTES = range(20, 25)  # no reference price updates then: minutes 22..24 are beyond 120 s
STALENESS = timedelta(seconds=120)
# (exchange, product) -> base price; the same product on two venues, the same coin in two quotes
VENUES = {
    ("coinbase", "BTC-USD"): Decimal("65000"),
    ("coinbase", "BTC-USDT"): Decimal("65010"),
    ("binance", "BTC-USDT"): Decimal("65020"),
    ("synthetic", "BTC-USD"): Decimal("64000"),
}
# (source, coin, vs) -> product
REFERENCES = {
    ("coingecko", "bitcoin", "usd"): "BTC-USD",
    ("coingecko", "bitcoin", "usdt"): "BTC-USDT",
    ("synthetic-coingecko", "bitcoin", "usd"): "BTC-USD",
}


@dataclass(frozen=True)
class DeviationLake:
    settings: Settings
    trades: list[RawTrade]
    references: list[Reference]
    first: dict
    second: dict
    builds_ok: bool


def make_trades(rng: random.Random, ingest: datetime, minutes: range, first_id: int) -> list[RawTrade]:
    trades, trade_id = [], first_id
    for (exchange, product), base in VENUES.items():
        for m in minutes:
            for _ in range(rng.randint(1, 4)):
                trade_id += 1
                t = START + timedelta(minutes=m, seconds=rng.uniform(0, 59.999))
                price = (base * Decimal(1 + rng.uniform(-0.003, 0.003))).quantize(Decimal("0.01"))
                size = Decimal(rng.randint(1, 10**8)).scaleb(-8)
                trades.append(
                    RawTrade(product, trade_id, str(price), str(size), "buy", t, ingest, exchange=exchange)
                )
    return trades


def make_references(rng: random.Random) -> list[Reference]:
    refs = []
    for (source, coin, vs), product in REFERENCES.items():
        base = VENUES[("synthetic" if source.startswith("synthetic") else "coinbase", product)]
        for half in range(2 * MINUTES + 2):
            if half // 2 in STALE_MINUTES:
                continue
            when = START + timedelta(seconds=30 * half - 15)  # between minute boundaries, and one before
            price = (base * Decimal(1 + rng.uniform(-0.002, 0.002))).quantize(Decimal("0.0000001"))
            refs.append(Reference(source, coin, vs, product, price, when))
    return refs


def gold_deviations(settings: Settings) -> dict[tuple, tuple]:
    con = connect(settings)
    try:
        rows = con.execute(
            "select exchange, product_id, candle_start, versus, versus_kind, vwap, versus_price, versus_time,"
            " deviation_bps from lake.gold.price_deviation_1m"
        ).fetchall()
    finally:
        con.close()
    return {(r[0], r[1], r[2], r[3]): (r[4], r[5], r[6], r[7], r[8]) for r in rows}


@pytest.fixture(scope="module")
def deviation_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeviationLake]:
    """Its own SeaweedFS: other tests' silver rows would change the candles under it."""
    seaweedfs = launch_seaweedfs(tmp_path_factory.mktemp("deviation-seaweedfs"))
    try:
        settings = settings_for(
            seaweedfs=seaweedfs,
            data_dir=tmp_path_factory.mktemp("deviation"),
            products=["BTC-USD", "BTC-USDT"],
        )
        ensure_tables(load_catalog(settings))
        rng = random.Random(15)
        ingest = START + timedelta(hours=1)
        trades = make_trades(rng, ingest, range(MINUTES), 10_000)
        references = make_references(rng)
        append_batch(settings, trades, first_offset=0)
        append_references(settings, references, ingest)
        first_build = run_gold(settings)
        first = gold_deviations(settings)
        # late trades an hour later, on coinbase BTC-USDT only: binance's rows versus it must move too
        late = [
            t for t in make_trades(rng, ingest + timedelta(hours=1), range(5, 8), 90_000)
            if (t.exchange, t.product_id) == ("coinbase", "BTC-USDT")
        ]  # fmt: skip
        append_batch(settings, late, first_offset=len(trades))
        second_build = run_gold(settings)
        yield DeviationLake(
            settings, trades + late, references, first, gold_deviations(settings),
            first_build.success and second_build.success,
        )  # fmt: skip
    finally:
        seaweedfs.stop()


def expected(trades: list[RawTrade], references: list[Reference]) -> dict[tuple, tuple]:
    """The model's rows by plain Decimal arithmetic (independent of the SQL)."""
    sums: dict[tuple, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    last_trade: dict[tuple, datetime] = {}
    for t in trades:
        key = (t.exchange, t.product_id, t.event_time.replace(second=0, microsecond=0))
        sums[key][0] += Decimal(t.price) * Decimal(t.size)
        sums[key][1] += Decimal(t.size)
        last_trade[key] = max(last_trade.get(key, t.event_time), t.event_time)
    vwap = {key: divide(n, v) for key, (n, v) in sums.items()}
    rows = {}
    for (exchange, product, minute), price in vwap.items():
        synthetic = exchange.startswith("synthetic")
        end = minute + timedelta(minutes=1)
        for source in {r.source for r in references}:
            usable = [
                r for r in references
                if r.source == source and r.product == product and source.startswith("synthetic") == synthetic
                and end - STALENESS < r.event_time <= end
            ]  # fmt: skip
            if usable:
                ref = max(usable, key=lambda r: r.event_time)
                bps = divide((price - ref.price) * 10000, ref.price)
                rows[(exchange, product, minute, source)] = (
                    "reference",
                    price,
                    ref.price,
                    ref.event_time,
                    bps,
                )
        for (other, other_product, other_minute), other_price in vwap.items():
            if (
                (other_product, other_minute) == (product, minute)
                and other != exchange
                and (other.startswith("synthetic") == synthetic)
            ):
                bps = divide((price - other_price) * 10000, other_price)
                versus_time = last_trade[(other, product, minute)]
                rows[(exchange, product, minute, other)] = ("venue", price, other_price, versus_time, bps)
    return rows


def test_every_dbt_test_passed(deviation_lake: DeviationLake) -> None:
    assert deviation_lake.builds_ok


def test_first_build_equals_the_decimal_reference(deviation_lake: DeviationLake) -> None:
    first_trades = [t for t in deviation_lake.trades if t.trade_id < 90_000]
    want = expected(first_trades, deviation_lake.references)
    assert deviation_lake.first == want
    kinds = defaultdict(int)
    for exchange, product, _minute, versus in want:
        kinds[(exchange, product, versus)] += 1
    # every minute has a reference except the stale ones; the two BTC-USDT venues meet every minute
    assert kinds[("coinbase", "BTC-USD", "coingecko")] == MINUTES - 3
    assert kinds[("synthetic", "BTC-USD", "synthetic-coingecko")] == MINUTES - 3
    assert kinds[("binance", "BTC-USDT", "coinbase")] == kinds[("coinbase", "BTC-USDT", "binance")] == MINUTES
    assert not any(v.startswith("synthetic") for (e, _, _, v) in want if not e.startswith("synthetic"))
    assert ("coinbase", "BTC-USD", START, "binance") not in want  # BTC-USD is not BTC-USDT


def test_late_trades_move_both_venues_rows(deviation_lake: DeviationLake) -> None:
    want = expected(deviation_lake.trades, deviation_lake.references)
    assert deviation_lake.second == want
    moved = {k for k in want if deviation_lake.first.get(k) != want[k]}
    minutes = {START + timedelta(minutes=m) for m in range(5, 8)}
    assert {(k[0], k[3]) for k in moved} == {
        ("coinbase", "coingecko"),
        ("coinbase", "binance"),
        ("binance", "coinbase"),
    }
    assert {k[2] for k in moved} == minutes


def test_alert_facts_carry_the_largest_and_the_sustained_deviation(deviation_lake: DeviationLake) -> None:
    want = expected(deviation_lake.trades, deviation_lake.references)
    facts = {(f["exchange"], f["product_id"]): f for f in alert_facts(deviation_lake.settings)}
    for (exchange, product), fact in facts.items():
        devs = sorted(
            (abs(v[4]) for k, v in want.items() if k[:2] == (exchange, product) and v[0] == "reference"),
            reverse=True,
        )
        assert Decimal(str(fact["max_abs_deviation_bps"])) == pytest.approx(devs[0], rel=Decimal("1e-12"))
        assert Decimal(str(fact["sustained_deviation_bps"])) == pytest.approx(devs[4], rel=Decimal("1e-12"))
    assert facts[("binance", "BTC-USDT")]["max_abs_deviation_bps"] is not None
