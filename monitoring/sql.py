"""Run a panel's Trino SQL on the embedded stack: substitute dashboard variables, transpile to
DuckDB with sqlglot and point ``iceberg.<schema>.<table>`` at DuckDB's attached ``lake`` catalog."""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from processing.duckdb_engine import CATALOG_ALIAS

TRINO_CATALOG = "iceberg"
_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def substitute(sql: str, values: dict[str, str]) -> str:
    """Replace ``$name`` / ``${name}`` like Grafana does; a value may not carry a quote."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for dashboard variable ${name}")
        if "'" in values[name]:
            raise ValueError(f"variable ${name} may not contain a quote: {values[name]!r}")
        return values[name]

    return _VARIABLE.sub(value, sql)


def to_duckdb(sql: str, values: dict[str, str] | None = None) -> str:
    tree = sqlglot.parse_one(substitute(sql, values or {}), read="trino")
    for table in tree.find_all(exp.Table):
        if table.catalog == TRINO_CATALOG:
            table.set("catalog", exp.to_identifier(CATALOG_ALIAS))
    return tree.sql(dialect="duckdb")
