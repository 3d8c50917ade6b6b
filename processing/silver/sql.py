"""Silver's logic, written once as SQL: select a bronze window, type, validate, deduplicate, merge.

Pure builders (no I/O). The canonical text is Spark SQL, the dialect of the compose stack's
``MERGE INTO``; both engines run it through :func:`to_dialect`, which transpiles it with sqlglot
for DuckDB and expands the one operation spelled per engine (the decimal parse, ``PARSE_MONEY``).
Spark is the source dialect because sqlglot maps Spark's ``UNIX_MILLIS``/``RLIKE``/
``TIMESTAMP_LTZ`` to DuckDB exactly, while the other direction turns DuckDB's
``epoch_ms(timestamp)`` into its inverse.

The statements, in the order an engine runs them (each takes the previous one's relation name):

1. :func:`checked_sql` — bronze rows with ``start <= ingest_time < end``, decimals parsed, and the
   first failed rule as ``reason`` (NULL when valid); ``raw`` kept for rejected rows only.
2. :func:`candidates_sql` — valid rows, typed to the ``silver.trades`` columns, one per key: the
   window's winner (plus ``copies``, how many valid copies the window held).
3. :func:`rejects_sql` — invalid rows as received, with the reason (``silver.trades_rejected``).
4. :func:`changes_sql` — candidates that are new keys or beat the row silver already holds: exactly
   what ``MERGE INTO ... WHEN MATCHED AND <beats> UPDATE / WHEN NOT MATCHED INSERT`` changes.
5. :func:`new_rejects_sql` — rejects not yet in ``silver.trades_rejected``.

Deterministic winner per (exchange, product_id, trade_id): the lowest
(source rank, kafka_topic, kafka_partition, kafka_offset), source rank following
:data:`SOURCE_PREFERENCE`. ``ws`` wins because it is the live copy: it carries the feed's sequence
number and the receive time the latency metrics mean; ``backfill`` (REST, fetched later) and
``replay`` (re-produced from a recording) only fill gaps. Among copies of one source the earliest
Kafka position wins, i.e. the first delivery, not a re-delivery. Kafka coordinates are unique per
bronze row, so the order is total: the winner is a function of the set of bronze rows ever
refined, whatever the order or overlap of the windows that brought them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import sqlglot
from sqlglot import exp

from infrastructure.settings import Settings
from infrastructure.tables import BRONZE_TRADES, MONEY, SILVER_TRADES, SILVER_TRADES_REJECTED
from infrastructure.times import Window

DIALECT = "spark"

SOURCE_PREFERENCE = ("ws", "backfill", "replay", "synthetic")
KEY = ("exchange", "product_id", "trade_id")
LINEAGE = ("kafka_topic", "kafka_partition", "kafka_offset")
SIDES = ("buy", "sell")

# Plain decimal notation with at most 20 integer and 18 fraction digits: exactly what
# decimal(38,18) holds, so a matching string casts without rounding in either engine, and
# "unparsable" means the same thing in both (their casts differ on exponents, blanks and overflow).
MONEY_TYPE = f"DECIMAL({MONEY.precision}, {MONEY.scale})"
DECIMAL_PATTERN = rf"^[+-]?[0-9]{{1,{MONEY.precision - MONEY.scale}}}([.][0-9]{{1,{MONEY.scale}}})?$"

BRONZE_COLUMNS = tuple(f.name for f in BRONZE_TRADES.schema.fields)
SILVER_COLUMNS = tuple(f.name for f in SILVER_TRADES.schema.fields)
REJECTED_COLUMNS = tuple(f.name for f in SILVER_TRADES_REJECTED.schema.fields)

# Columns silver requires that bronze may lack in a hand-made or corrupted file.
REQUIRED = (*KEY, "side", "event_time", "receive_time", "ingest_time", "source", *LINEAGE)

# Rejection reasons, in the order they are tested: a row gets the first that applies.
REASONS = (
    "missing_field",
    "unparsable_price",
    "unparsable_size",
    "non_positive_price",
    "non_positive_size",
    "unknown_product",
    "unknown_side",
    "event_time_in_future",
    "event_time_too_old",
)


@dataclass(frozen=True)
class Rules:
    """The validation settings the SQL embeds."""

    products: tuple[str, ...]
    max_event_future_s: int
    max_event_age_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            products=settings.products,
            max_event_future_s=settings.silver.max_event_future_s,
            max_event_age_s=settings.silver.max_event_age_s,
        )


@dataclass(frozen=True)
class KeyRange:
    """The trade ids of one (exchange, product) a window touches: bounds the lookup of silver rows."""

    exchange: str
    product_id: str
    low: int
    high: int


def literal(value: str | int) -> str:
    """A SQL literal in the canonical dialect (quotes escaped by sqlglot, not by hand)."""
    node = exp.Literal.number(value) if isinstance(value, int) else exp.Literal.string(value)
    return node.sql(dialect=DIALECT)


def timestamp_literal(value: datetime) -> str:
    """A UTC instant; ``TIMESTAMP_LTZ`` becomes DuckDB's ``TIMESTAMPTZ`` (a zoneless literal would not)."""
    return f"TIMESTAMP_LTZ '{value.astimezone(UTC).isoformat(sep=' ')}'"


def _in_list(values: Iterable[str]) -> str:
    return ", ".join(literal(v) for v in values)


def source_rank(alias: str) -> str:
    whens = " ".join(f"WHEN {literal(s)} THEN {i}" for i, s in enumerate(SOURCE_PREFERENCE))
    return f"CASE {alias}.source {whens} ELSE {len(SOURCE_PREFERENCE)} END"


def _winner_terms(alias: str) -> list[str]:
    return [source_rank(alias), *(f"{alias}.{c}" for c in LINEAGE)]


def beats(a: str, b: str) -> str:
    """``a`` precedes ``b`` in the winner order: a lexicographic comparison, built from the same
    terms as the ``ROW_NUMBER`` order so the window's dedup and the merge agree."""
    terms = list(zip(_winner_terms(a), _winner_terms(b), strict=True))
    condition = f"{terms[-1][0]} < {terms[-1][1]}"
    for left, right in reversed(terms[:-1]):
        condition = f"({left} < {right} OR ({left} = {right} AND {condition}))"
    return condition


def _key_equal(a: str, b: str) -> str:
    return " AND ".join(f"{a}.{c} = {b}.{c}" for c in KEY)


# One operation, two spellings: "a string that matched DECIMAL_PATTERN, as decimal(38,18)".
# Canonical SQL writes PARSE_MONEY(x); to_dialect spells it out. Spark casts. DuckDB's string to
# 128-bit decimal cast is ~100x slower than the rest of silver together (measured: 11 s for 200k
# values), so DuckDB assembles the same exact value from a HUGEINT integer part and an 18-digit
# fraction, both fast casts. TRY_ keeps unmatched rows (never selected) from raising.
PARSE_MONEY = "PARSE_MONEY"
_MONEY_SPELLINGS = {
    "spark": f"TRY_CAST({{x}} AS {MONEY_TYPE})",
    "duckdb": (
        f"CAST(CASE WHEN starts_with({{x}}, '-') THEN -({{m}}) ELSE {{m}} END AS {MONEY_TYPE})".replace(
            "{m}",
            f"TRY_CAST(TRY_CAST(ltrim(split_part({{x}}, '.', 1), '+-') AS HUGEINT) AS {MONEY_TYPE})"
            f" + TRY_CAST('0.' || rpad(split_part({{x}}, '.', 2), {MONEY.scale}, '0')"
            f" AS DECIMAL({MONEY.scale}, {MONEY.scale}))",
        )
    ),
}


def parse_money(column: str) -> str:
    """``column`` (already matched against DECIMAL_PATTERN) as decimal(38,18), in canonical SQL."""
    return f"{PARSE_MONEY}({column})"


def checked_sql(bronze: str, window: Window, rules: Rules) -> str:
    """Bronze rows of the window with ``price_value``/``size_value`` and the rejection ``reason``.

    ``raw`` is kept for rejected rows only (silver does not carry it, the rejects table does), so
    an engine can materialize this relation once at a fraction of bronze's size."""
    parsed = ",\n      ".join(
        f"CASE WHEN b.{c} RLIKE {literal(DECIMAL_PATTERN)} THEN {parse_money(f'b.{c}')} END AS {c}_value"
        for c in ("price", "size")
    )
    missing = " OR ".join(f"p.{c} IS NULL" for c in REQUIRED)
    future = f"INTERVAL '{rules.max_event_future_s}' SECOND"
    age = f"INTERVAL '{rules.max_event_age_s}' SECOND"
    reasons = {
        "missing_field": missing,
        "unparsable_price": "p.price_value IS NULL",
        "unparsable_size": "p.size_value IS NULL",
        "non_positive_price": "p.price_value <= 0",
        "non_positive_size": "p.size_value <= 0",
        "unknown_product": f"p.product_id NOT IN ({_in_list(rules.products)})",
        "unknown_side": f"p.side NOT IN ({_in_list(SIDES)})",
        "event_time_in_future": f"p.event_time > p.ingest_time + {future}",
        "event_time_too_old": f"p.event_time < p.ingest_time - {age}",
    }
    assert tuple(reasons) == REASONS
    cases = "\n        ".join(f"WHEN {cond} THEN {literal(code)}" for code, cond in reasons.items())
    columns = ", ".join(f"b.{c}" for c in BRONZE_COLUMNS)
    kept = ", ".join(f"q.{c}" for c in (*BRONZE_COLUMNS, "price_value", "size_value", "reason") if c != "raw")
    return f"""SELECT {kept}, CASE WHEN q.reason IS NOT NULL THEN q.raw END AS raw
    FROM (
      SELECT p.*,
        CASE
          {cases}
        END AS reason
      FROM (
        SELECT {columns},
        {parsed}
        FROM {bronze} AS b
        WHERE b.ingest_time >= {timestamp_literal(window.start)}
          AND b.ingest_time < {timestamp_literal(window.end)}
      ) AS p
    ) AS q"""


def candidates_sql(checked: str) -> str:
    """The window's valid rows as ``silver.trades`` columns, one winner per key, plus ``copies``."""
    typed = {c: f"c.{c}" for c in SILVER_COLUMNS}
    typed["price"] = "c.price_value"
    typed["size"] = "c.size_value"
    # the exact interval in microseconds, floored to whole milliseconds (truncating each instant
    # first can be 1 ms off); |micros| < 2^53, so the division by 1000.0 is exact enough to floor
    typed["ingest_latency_ms"] = (
        "CAST(FLOOR((UNIX_MICROS(c.ingest_time) - UNIX_MICROS(c.event_time)) / 1000.0) AS BIGINT)"
    )
    select = ",\n        ".join(f"{expr} AS {name}" for name, expr in typed.items())
    partition = ", ".join(f"c.{k}" for k in KEY)
    order = ", ".join(_winner_terms("c"))
    outer = ", ".join(f"r.{c}" for c in SILVER_COLUMNS)
    return f"""SELECT {outer}, r.copies
    FROM (
      SELECT {select},
        ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {order}) AS winner_rank,
        COUNT(*) OVER (PARTITION BY {partition}) AS copies
      FROM {checked} AS c
      WHERE c.reason IS NULL
    ) AS r
    WHERE r.winner_rank = 1"""


def rejects_sql(checked: str) -> str:
    """The window's invalid rows, as received, with their reason."""
    columns = ", ".join(f"c.{c}" for c in REJECTED_COLUMNS)
    return f"SELECT {columns} FROM {checked} AS c WHERE c.reason IS NOT NULL"


def key_ranges_sql(candidates: str) -> str:
    """Per (exchange, product) trade-id bounds of the candidates, for :func:`existing_silver_sql`."""
    return f"""SELECT exchange, product_id, MIN(trade_id) AS low, MAX(trade_id) AS high
    FROM {candidates} GROUP BY exchange, product_id ORDER BY exchange, product_id"""


def existing_silver_sql(silver: str, ranges: Sequence[KeyRange]) -> str:
    """Silver rows that may share a key with the candidates, pruned by constant trade-id bounds
    (engines push those into the Iceberg scan). Bounded by key, not by event day, so a late trade
    still meets its earlier copy whatever day either landed in."""
    if not ranges:
        return f"SELECT * FROM {silver} WHERE 1 = 0"
    bounds = " OR ".join(
        f"(exchange = {literal(r.exchange)} AND product_id = {literal(r.product_id)}"
        f" AND trade_id BETWEEN {r.low} AND {r.high})"
        for r in ranges
    )
    return f"SELECT * FROM {silver} WHERE {bounds}"


def changes_sql(candidates: str, existing: str) -> str:
    """Candidates that change silver: new keys (``replaces`` false) or ones that beat the row silver
    holds (``replaces`` true). Candidates equal to or beaten by that row change nothing, which is
    what makes re-running a window a no-op."""
    columns = ", ".join(f"c.{col}" for col in SILVER_COLUMNS)
    return f"""SELECT {columns}, e.trade_id IS NOT NULL AS replaces
    FROM {candidates} AS c
    LEFT JOIN ({existing}) AS e ON {_key_equal("c", "e")}
    WHERE e.trade_id IS NULL OR {beats("c", "e")}"""


def _lineage_equal(a: str, b: str) -> str:
    return " AND ".join(f"{a}.{c} = {b}.{c}" for c in LINEAGE)


def existing_rejects_sql(rejected: str, window: Window) -> str:
    """Rejects already recorded for this window. A bronze row's ingest time never changes, so its
    reject can only sit in this window's range: an exact, partition-pruned lookup."""
    columns = ", ".join(LINEAGE)
    return f"""SELECT {columns} FROM {rejected}
    WHERE ingest_time >= {timestamp_literal(window.start)} AND ingest_time < {timestamp_literal(window.end)}"""


def new_rejects_sql(rejects: str, existing: str) -> str:
    """Rejects of the window that ``silver.trades_rejected`` does not hold yet."""
    columns = ", ".join(f"r.{c}" for c in REJECTED_COLUMNS)
    return f"""SELECT {columns}
    FROM {rejects} AS r
    LEFT JOIN ({existing}) AS e ON {_lineage_equal("r", "e")}
    WHERE e.kafka_offset IS NULL"""


def merge_trades_sql(target: str, changes: str) -> str:
    """Spark/Iceberg ``MERGE INTO`` applying :func:`changes_sql`'s rows. The ``beats`` guard repeats
    the rule so the statement is correct on its own, even against a table that moved meanwhile."""
    update = ", ".join(f"t.{c} = s.{c}" for c in SILVER_COLUMNS)
    insert = ", ".join(SILVER_COLUMNS)
    values = ", ".join(f"s.{c}" for c in SILVER_COLUMNS)
    return f"""MERGE INTO {target} AS t
    USING {changes} AS s
    ON {_key_equal("t", "s")}
    WHEN MATCHED AND {beats("s", "t")} THEN UPDATE SET {update}
    WHEN NOT MATCHED THEN INSERT ({insert}) VALUES ({values})"""


def merge_rejects_sql(target: str, rejects: str, window: Window) -> str:
    """Spark/Iceberg ``MERGE INTO`` adding the window's rejects once per Kafka position."""
    insert = ", ".join(REJECTED_COLUMNS)
    values = ", ".join(f"s.{c}" for c in REJECTED_COLUMNS)
    return f"""MERGE INTO {target} AS t
    USING {rejects} AS s
    ON {_lineage_equal("t", "s")}
      AND t.ingest_time >= {timestamp_literal(window.start)} AND t.ingest_time < {timestamp_literal(window.end)}
    WHEN NOT MATCHED THEN INSERT ({insert}) VALUES ({values})"""


@lru_cache(maxsize=256)
def to_dialect(sql: str, dialect: str) -> str:
    """``sql`` (canonical Spark SQL) as ``dialect`` ("spark" or "duckdb") runs it."""
    if dialect not in _MONEY_SPELLINGS:
        raise ValueError(f"no silver dialect {dialect!r}: expected one of {sorted(_MONEY_SPELLINGS)}")

    def spell(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.upper() == PARSE_MONEY:
            (argument,) = node.expressions
            text = _MONEY_SPELLINGS[dialect].replace("{x}", argument.sql(dialect=dialect))
            return sqlglot.parse_one(text, read=dialect)
        return node

    tree = sqlglot.parse_one(sql, read=DIALECT).transform(spell)
    return tree.sql(dialect=dialect, unsupported_level=sqlglot.ErrorLevel.RAISE)
