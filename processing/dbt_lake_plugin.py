"""dbt-duckdb plugin: prepares dbt's DuckDB connection for the lakehouse catalog.

dbt-duckdb would INSTALL extensions from the internet; this loads them from their pip packages and
creates the S3 and catalog secrets, exactly as :func:`processing.duckdb_engine.configure` does for
every other DuckDB connection. The profile's ``attach:`` then attaches the catalog as ``lake``.
Endpoints and credentials arrive as plugin config, read by ``profiles.yml`` from ``LAKEHOUSE_*``.
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from infrastructure.settings import Settings
from processing.duckdb_engine import configure


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
