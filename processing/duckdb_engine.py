"""DuckDB connected to the lakehouse: the embedded stack's SQL engine (in place of Trino and Spark).

Extensions come from the ``duckdb-extension-*`` pip packages and are loaded by file path, because
nothing may be downloaded at run time. The Iceberg REST catalog is attached as ``lake``, so tables
read as ``lake.bronze.trades``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

from infrastructure.settings import Settings

EXTENSIONS = ("httpfs", "avro", "iceberg")
CATALOG_ALIAS = "lake"


def extension_path(name: str) -> Path:
    """The ``.duckdb_extension`` file shipped by the ``duckdb-extension-<name>`` package for this duckdb."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"duckdb-extension-{name} is not installed: run `make setup`")
    root = Path(next(iter(spec.submodule_search_locations))) / "extensions" / f"v{duckdb.__version__}"
    found = sorted(root.glob(f"{name}.duckdb_extension*"))
    if not found:
        raise FileNotFoundError(f"no {name} extension for duckdb {duckdb.__version__} under {root}")
    return found[0]


def connect(
    settings: Settings, read_only: bool = True, database: str = ":memory:"
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with S3 credentials and the lakehouse catalog attached as ``lake``.

    ``read_only=False`` lets DuckDB write Iceberg tables through the catalog (used for gold).
    """
    con = duckdb.connect(
        database,
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    configure(con, settings)
    con.execute(
        f"""ATTACH '{settings.catalog.warehouse}' AS {CATALOG_ALIAS}
            (TYPE iceberg, {catalog_auth_option(settings)}, ENDPOINT '{settings.catalog.uri}',
             READ_ONLY {str(read_only).lower()})"""
    )
    return con


def catalog_auth_option(settings: Settings) -> str:
    """How the attach authenticates: the ``lake_catalog`` OAuth2 secret, or (``catalog.auth=none``:
    Nessie in the compose stack has no token endpoint) no credentials at all. Without the explicit
    ``none`` DuckDB would ask Nessie for a token and fail the attach."""
    return "SECRET lake_catalog" if settings.catalog.auth == "oauth2" else "AUTHORIZATION_TYPE 'none'"


def configure(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Load the extensions, use UTC, and create the ``lake_s3`` and ``lake_catalog`` secrets
    (also used by dbt's DuckDB target, whose profile attaches the catalog itself)."""
    for name in EXTENSIONS:
        con.execute(f"LOAD '{extension_path(name)}'")
    con.execute("SET TimeZone = 'UTC'")
    key, secret = settings.s3.credentials()
    endpoint = settings.s3.endpoint.split("://", 1)
    con.execute(
        """CREATE OR REPLACE SECRET lake_s3 (TYPE s3, KEY_ID ?, SECRET ?, REGION ?, ENDPOINT ?,
               URL_STYLE 'path', USE_SSL ?)""",
        [key, secret, settings.s3.region, endpoint[-1], endpoint[0] == "https"],
    )
    if settings.catalog.auth != "oauth2":
        return
    client_id, _, client_secret = settings.catalog_credential().partition(":")
    con.execute(
        "CREATE OR REPLACE SECRET lake_catalog (TYPE iceberg, CLIENT_ID ?, CLIENT_SECRET ?, OAUTH2_SERVER_URI ?)",
        [client_id, client_secret, f"{settings.catalog.uri.rstrip('/')}/v1/oauth/tokens"],
    )
