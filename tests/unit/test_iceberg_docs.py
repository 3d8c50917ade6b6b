"""docs/iceberg.md's Trino statements parse as Trino SQL and name tables that exist in the contracts
(so the page cannot drift into SQL Trino would refuse or tables the lakehouse does not have)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from infrastructure.tables import TABLES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "iceberg.md"
METADATA_TABLES = {"files", "history", "snapshots", "refs", "manifests", "partitions"}


def trino_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_the_page_shows_every_question_in_trino() -> None:
    text = "\n".join(trino_blocks())
    for needle in ("FOR VERSION AS OF", "FOR TIMESTAMP AS OF", '"trades$files"', '"trades$history"',
                   '"trades$snapshots"', '"trades$refs"', '"trades$manifests"'):  # fmt: skip
        assert needle in text


@pytest.mark.parametrize("statement", trino_blocks())
def test_each_statement_parses_as_trino_and_names_a_contract_table(statement: str) -> None:
    tree = sqlglot.parse_one(statement, read="trino")
    contracts = {t.identifier for t in TABLES}
    for table in tree.find_all(exp.Table):
        assert table.catalog == "iceberg"
        base, _, metadata = table.name.partition("$")
        assert f"{table.db}.{base}" in contracts
        assert metadata in METADATA_TABLES | {""}


def test_a_broken_statement_does_not_parse() -> None:
    """The check can fail: the parser refuses what Trino would."""
    with pytest.raises(sqlglot.errors.ParseError):
        sqlglot.parse_one(
            "SELECT * FROM iceberg.bronze.trades FOR TIMESTAMP AS OF TIMESTAMP 'x' WHERE", read="trino"
        )
