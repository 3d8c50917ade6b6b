"""dbt-duckdb plugin: prepares dbt's DuckDB connection for the lakehouse catalog.

dbt-duckdb would INSTALL extensions from the internet; this loads them from their pip packages and
creates the S3 and catalog secrets, exactly as :func:`processing.duckdb_engine.configure` does for
every other DuckDB connection. The profile's ``attach:`` then attaches the catalog as ``lake``.
Endpoints and credentials arrive as plugin config, read by ``profiles.yml`` from ``LAKEHOUSE_*``.

It also registers ``lakehouse_trade_notional``, the exact price x size that gold's
``trade_notional`` macro calls on DuckDB (see :func:`trade_notional` for why it is not SQL there).
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from infrastructure.settings import Settings
from processing.duckdb_engine import configure

NOTIONAL_FUNCTION = "lakehouse_trade_notional"  # the name macros/money.sql calls
MONEY = pa.decimal128(38, 18)
HALF_AWAY_FROM_ZERO = "half_towards_infinity"  # Arrow's name for it


def trade_notional(price: pa.Array, size: pa.Array) -> pa.Array:
    """price x size as decimal(38,18), each factor first rounded half away from zero to 9 decimals:
    the same value as Trino's ``cast(price as decimal(38, 9)) * cast(size as decimal(38, 9))``.

    DuckDB computes that expression exactly too, but its decimal(38,18) -> decimal(38,9) cast
    divides 128-bit integers bit by bit (measured ~3 us a value, two per trade): it was most of
    gold's build time. Arrow's decimal kernels do the same arithmetic far faster. Usual batches
    (|price| < 1e10, |size| < 1e9) multiply in decimal128; a batch with a larger factor falls back to
    decimal256, where the product cannot overflow before the final cast, which raises (like
    DuckDB's multiplication) if a notional does not fit decimal(38,18). Nulls stay null.
    """
    p9 = pc.round(price, 9, round_mode=HALF_AWAY_FROM_ZERO)
    s9 = pc.round(size, 9, round_mode=HALF_AWAY_FROM_ZERO)
    try:  # a checked cast: raises rather than wrap when a value needs more digits
        product = pc.multiply(pc.cast(p9, pa.decimal128(19, 9)), pc.cast(s9, pa.decimal128(18, 9)))
    except pa.ArrowInvalid:
        product = pc.multiply(pc.cast(p9, pa.decimal256(38, 9)), pc.cast(s9, pa.decimal256(37, 9)))
    return pc.cast(product, MONEY)


def register_functions(conn: DuckDBPyConnection) -> None:
    """The Python functions gold's DuckDB SQL calls."""
    money = duckdb.decimal_type(38, 18)
    conn.create_function(NOTIONAL_FUNCTION, trade_notional, [money, money], money, type="arrow")


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        c = plugin_config
        self.settings = Settings(
            _env_file=None,
            s3={
                "endpoint": c["s3_endpoint"],
                "region": c["s3_region"],
                "access_key": c["s3_access_key"] or None,
                "secret_key": c["s3_secret_key"] or None,
            },
            catalog={
                "uri": c["catalog_uri"],
                "warehouse": c["catalog_warehouse"],
                "credential": c["catalog_credential"] or None,
            },
        )

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        configure(conn, self.settings)
        register_functions(conn)
