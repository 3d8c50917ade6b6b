"""The notional function gold's DuckDB target uses: exact, and the same value as the SQL Trino runs
(``cast(price as decimal(38, 9)) * cast(size as decimal(38, 9))``), checked against ``Decimal``."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal, localcontext

import duckdb
import pyarrow as pa
import pytest

from processing.dbt_lake_plugin import MONEY, NOTIONAL_FUNCTION, register_functions, trade_notional

Q9 = Decimal("1e-9")


def reference(price: Decimal, size: Decimal) -> Decimal:
    """Each factor rounded half away from zero to 9 decimals (Trino's and DuckDB's cast), then the
    exact product (at most 18 decimals)."""
    with localcontext() as ctx:
        ctx.prec = 80  # the default 28 digits would round the product
        return price.quantize(Q9, ROUND_HALF_UP) * size.quantize(Q9, ROUND_HALF_UP)


def decimals(rng: random.Random, n: int, integer_digits: int) -> list[Decimal]:
    return [
        Decimal(rng.randrange(-(10 ** (integer_digits + 18)), 10 ** (integer_digits + 18))).scaleb(-18)
        for _ in range(n)
    ]


def test_equals_decimal_arithmetic_including_ties_and_signs() -> None:
    rng = random.Random(5)
    prices = [Decimal("97000.12345678"), Decimal("0.0000000005"), Decimal("-0.0000000005"), Decimal("1.0000000015"),
              Decimal("0.12345678949999"), *decimals(rng, 500, 7)]  # fmt: skip
    sizes = [Decimal("0.00000001"), Decimal("3"), Decimal("2"), Decimal("-7.0000000025"), Decimal("1e-18"),
             *decimals(rng, 500, 5)]  # fmt: skip
    got = trade_notional(pa.array(prices, MONEY), pa.array(sizes, MONEY)).to_pylist()
    assert got == [reference(p, s) for p, s in zip(prices, sizes, strict=True)]


def test_large_factors_take_the_wide_path_and_stay_exact() -> None:
    """A price >= 1e10 or a size >= 1e9 does not fit the decimal128 fast path."""
    prices = [Decimal("12345678901.0000000015"), Decimal("3.5"), Decimal("99999999999999999999.5")]
    sizes = [Decimal("2.0000000005"), Decimal("1234567890123.123456789"), Decimal("0.000000001")]
    got = trade_notional(pa.array(prices, MONEY), pa.array(sizes, MONEY)).to_pylist()
    assert got == [reference(p, s) for p, s in zip(prices, sizes, strict=True)]


def test_nulls_stay_null_and_overflow_raises() -> None:
    money = [Decimal("2"), None]
    assert trade_notional(pa.array(money, MONEY), pa.array([None, Decimal("1")], MONEY)).to_pylist() == [
        None,
        None,
    ]
    big = pa.array([Decimal("1e19")], MONEY)
    with pytest.raises(pa.ArrowInvalid):
        trade_notional(big, big)  # 1e38 does not fit decimal(38,18): an error, never a wrong number


def test_duckdb_calls_it_as_sql_and_agrees_with_its_own_cast() -> None:
    con = duckdb.connect()
    register_functions(con)
    rng = random.Random(9)
    prices, sizes = decimals(rng, 3000, 6), decimals(rng, 3000, 4)
    t = pa.table({"price": pa.array(prices, MONEY), "size": pa.array(sizes, MONEY)})  # noqa: F841 (scanned by name)
    mismatches = con.execute(
        f"""select count(*) from t where {NOTIONAL_FUNCTION}(price, size)
            is distinct from cast(price as decimal(38, 9)) * cast(size as decimal(38, 9))"""
    ).fetchone()
    assert mismatches == (0,)
