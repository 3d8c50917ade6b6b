"""Trade-id completeness of silver, written as pure functions: find holes, tell dead letters apart,
and reconcile what was found with ``silver.trade_gaps``.

Coinbase trade ids are consecutive per product, so a silver that misses no trade has no hole
between two consecutive ids it holds. A check over a window of exchange time ``[start, end)``:

1. :func:`holes_sql` — per (exchange, product), every jump between consecutive trade ids whose
   upper end is a trade of the window. The last trade before the window (looked up ``lookback``
   back) takes part, so a hole across the window's start is found, and found once: it belongs to
   the hour of the trade after it, never to the hour before.
2. :func:`split_dead_letters` — ids the exchange did send but the pipeline refused (dead-lettered
   at ingest, rejected by silver) are not missing: backfilling them would fetch the same bad trade
   again. They are cut out of each hole and recorded as ``dead_lettered``.
3. :func:`coverage_sql` + :func:`reconcile` — every ``open`` row of ``silver.trade_gaps`` is
   re-checked by counting the ids of its range now present (``filled`` once all are), and holes
   that no open row covers become new ``open`` rows.

SQL is canonical Spark SQL, run through :func:`processing.silver.sql.to_dialect` like the rest of
silver (sqlglot also turns it into Trino's dialect; a unit test proves all three parse).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from processing.silver.sql import literal, timestamp_literal

OPEN, FILLED, DEAD_LETTERED = "open", "filled", "dead_lettered"
STATUSES = (OPEN, FILLED, DEAD_LETTERED)


def venue(alias: str) -> str:
    """The sequence a trade id belongs to. Synthetic trades are venue ``synthetic`` (rows written
    before that carried the exchange they imitate, with source ``synthetic``) and number their own
    ids: checked (and never backfilled) as a venue of their own."""
    return f"CASE WHEN {alias}.source = 'synthetic' THEN 'synthetic' ELSE {alias}.exchange END"


@dataclass(frozen=True, order=True)
class Hole:
    """Trade ids ``first_missing_id .. last_missing_id`` (inclusive) of one (exchange, product)."""

    exchange: str
    product_id: str
    first_missing_id: int
    last_missing_id: int
    hour: datetime  # the hour of the first trade after the hole

    @property
    def count(self) -> int:
        return self.last_missing_id - self.first_missing_id + 1

    @property
    def sequence(self) -> tuple[str, str]:
        return (self.exchange, self.product_id)

    def overlaps(self, other: Hole) -> bool:
        return (
            self.sequence == other.sequence
            and self.first_missing_id <= other.last_missing_id
            and other.first_missing_id <= self.last_missing_id
        )


@dataclass(frozen=True)
class GapRow:
    """One row of ``silver.trade_gaps``."""

    hole: Hole
    missing_count: int
    detected_at: datetime
    status: str
    filled_at: datetime | None
    checked_at: datetime

    def as_record(self) -> dict:
        h = self.hole
        return {
            "exchange": h.exchange, "product_id": h.product_id, "hour": h.hour,
            "first_missing_id": h.first_missing_id, "last_missing_id": h.last_missing_id,
            "missing_count": self.missing_count, "detected_at": self.detected_at, "status": self.status,
            "filled_at": self.filled_at, "checked_at": self.checked_at,
        }  # fmt: skip

    @classmethod
    def from_record(cls, r: Mapping) -> GapRow:
        hole = Hole(r["exchange"], r["product_id"], r["first_missing_id"], r["last_missing_id"], r["hour"])
        return cls(hole, r["missing_count"], r["detected_at"], r["status"], r["filled_at"], r["checked_at"])


def holes_sql(silver: str, start: datetime, end: datetime, lookback: timedelta) -> str:
    """Holes whose following trade has ``start <= event_time < end``: exchange, product_id, hour,
    first_missing_id, last_missing_id. Duplicate ids (in any relation) are not holes."""
    lo, a, b = (timestamp_literal(t) for t in (start - lookback, start, end))
    return f"""WITH ids AS (
      SELECT {venue("s")} AS exchange, s.product_id, s.trade_id, s.event_time
      FROM {silver} AS s
      WHERE s.event_time >= {lo} AND s.event_time < {b}
    ),
    before AS (
      SELECT exchange, product_id, MAX(trade_id) AS trade_id, MAX(event_time) AS event_time
      FROM ids WHERE event_time < {a} GROUP BY exchange, product_id
    ),
    seen AS (
      SELECT exchange, product_id, trade_id, event_time FROM ids WHERE event_time >= {a}
      UNION ALL
      SELECT exchange, product_id, trade_id, event_time FROM before
    ),
    ordered AS (
      SELECT exchange, product_id, trade_id, event_time,
        LAG(trade_id) OVER (PARTITION BY exchange, product_id ORDER BY trade_id) AS prev_id
      FROM seen
    )
    SELECT exchange, product_id, DATE_TRUNC('HOUR', event_time) AS hour,
      prev_id + 1 AS first_missing_id, trade_id - 1 AS last_missing_id
    FROM ordered
    WHERE event_time >= {a} AND trade_id > prev_id + 1
    ORDER BY exchange, product_id, first_missing_id"""


def _range_filter(alias: str, holes: Sequence[Hole]) -> str:
    """Constant product and id bounds (pushed into the Iceberg scan)."""
    return " OR ".join(
        f"({alias}.product_id = {literal(h.product_id)}"
        f" AND {alias}.trade_id BETWEEN {h.first_missing_id} AND {h.last_missing_id})"
        for h in holes
    )


def coverage_sql(silver: str, dead: str, holes: Sequence[Hole]) -> str:
    """Per hole (by position in ``holes``), how many of its ids are now in silver or in ``dead``
    (a relation of exchange, product_id, trade_id): all of them means the hole is closed."""
    if not holes:
        raise ValueError("coverage_sql needs at least one hole")
    values = ", ".join(
        f"({i}, {literal(h.exchange)}, {literal(h.product_id)}, {h.first_missing_id}, {h.last_missing_id})"
        for i, h in enumerate(holes)
    )
    return f"""SELECT g.position, COUNT(DISTINCT k.trade_id) AS present
    FROM (VALUES {values}) AS g(position, exchange, product_id, first_id, last_id)
    LEFT JOIN (
      SELECT {venue("s")} AS exchange, s.product_id, s.trade_id FROM {silver} AS s
      WHERE {_range_filter("s", holes)}
      UNION
      SELECT d.exchange, d.product_id, d.trade_id FROM {dead} AS d
    ) AS k
      ON k.exchange = g.exchange AND k.product_id = g.product_id
      AND k.trade_id BETWEEN g.first_id AND g.last_id
    GROUP BY g.position
    ORDER BY g.position"""


def rejected_ids_sql(rejected: str, since: datetime) -> str:
    """Trade ids silver refused (``silver.trades_rejected``) since ``since``: dead letters too."""
    return f"""SELECT DISTINCT {venue("r")} AS exchange, r.product_id, r.trade_id
    FROM {rejected} AS r
    WHERE r.ingest_time >= {timestamp_literal(since)}
      AND r.exchange IS NOT NULL AND r.product_id IS NOT NULL AND r.trade_id IS NOT NULL"""


DeadIds = Mapping[tuple[str, str], Sequence[int]]  # (exchange, product) -> sorted ids


def index_dead(ids: Iterable[tuple[str, str, int]]) -> dict[tuple[str, str], list[int]]:
    """(exchange, product_id, trade_id) triples as sorted, distinct ids per sequence."""
    found: dict[tuple[str, str], set[int]] = {}
    for exchange, product, trade_id in ids:
        found.setdefault((exchange, product), set()).add(trade_id)
    return {k: sorted(v) for k, v in found.items()}


def _runs(ids: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted distinct ids as (first, last)."""
    runs: list[tuple[int, int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def split_dead_letters(holes: Iterable[Hole], dead: DeadIds) -> tuple[list[Hole], list[Hole]]:
    """Each hole cut into what is really missing and what was dead-lettered: (missing, dead)."""
    missing: list[Hole] = []
    refused: list[Hole] = []
    for hole in holes:
        ids = dead.get(hole.sequence, ())
        inside = ids[
            bisect.bisect_left(ids, hole.first_missing_id) : bisect.bisect_right(ids, hole.last_missing_id)
        ]
        cursor = hole.first_missing_id
        for first, last in _runs(inside):
            if first > cursor:
                missing.append(replace(hole, first_missing_id=cursor, last_missing_id=first - 1))
            refused.append(replace(hole, first_missing_id=first, last_missing_id=last))
            cursor = last + 1
        if cursor <= hole.last_missing_id:
            missing.append(replace(hole, first_missing_id=cursor))
    return missing, refused


def reconcile(
    existing: Sequence[GapRow],
    present: Mapping[int, int],
    missing: Iterable[Hole],
    refused: Iterable[Hole],
    now: datetime,
    retention: timedelta,
) -> list[GapRow]:
    """The table's rows after a check. ``present[i]`` counts the ids of ``existing[i]`` (an open
    row) now in silver or dead-lettered; an open row with all of them is ``filled``. A hole that
    overlaps a row still open is that row (found again, not new); any other hole is a new row.
    Closed rows older than ``retention`` are dropped, which keeps the table small."""
    rows: list[GapRow] = []
    for i, row in enumerate(existing):
        if row.status == OPEN:
            left = max(row.hole.count - present.get(i, 0), 0)
            if left == 0:
                row = replace(row, missing_count=0, status=FILLED, filled_at=now, checked_at=now)
            else:
                row = replace(row, missing_count=left, checked_at=now)
        elif (row.filled_at or row.detected_at) < now - retention:
            continue
        rows.append(row)
    still_open = [r.hole for r in rows if r.status == OPEN]
    for hole in sorted(set(missing)):
        if not any(hole.overlaps(o) for o in still_open):
            rows.append(GapRow(hole, hole.count, now, OPEN, None, now))
            still_open.append(hole)
    recorded = {r.hole for r in rows if r.status == DEAD_LETTERED}
    for hole in sorted(set(refused)):
        if hole not in recorded:
            rows.append(GapRow(hole, hole.count, now, DEAD_LETTERED, None, now))
            recorded.add(hole)
    return sorted(rows, key=lambda r: (r.hole.exchange, r.hole.product_id, r.hole.first_missing_id, r.status))


@dataclass(frozen=True)
class BackfillRequest:
    """One hole for the ``crypto_backfill`` DAG to fill by trade id."""

    hole: Hole
    run_tag: str  # makes the triggered run's id unique per check

    @property
    def run_id(self) -> str:
        h = self.hole
        return f"gap__{h.exchange}__{h.product_id}__{h.first_missing_id}-{h.last_missing_id}__{self.run_tag}"

    def trigger_kwargs(self) -> dict:
        """``TriggerDagRunOperator`` arguments (mapped with ``expand_kwargs``)."""
        h = self.hole
        conf = {
            "exchange": h.exchange, "product": h.product_id, "start": h.hour.isoformat(),
            "end": (h.hour + timedelta(hours=1)).isoformat(), "first_id": h.first_missing_id,
            "last_id": h.last_missing_id,
        }  # fmt: skip
        return {"trigger_run_id": self.run_id, "conf": conf}


def backfill_requests(
    rows: Iterable[GapRow],
    exchanges: Iterable[str],
    products: Mapping[str, Iterable[str]],
    max_ids: int,
    max_requests: int,
    run_tag: str,
) -> list[BackfillRequest]:
    """Open holes the exchange's REST API can fill, oldest first, within the per-check bounds.
    ``products``: per exchange, the product ids it may backfill; an exchange not in it takes any
    (Binance's ids come from its own symbol metadata: its backfill refuses a symbol not configured)."""
    exchanges = frozenset(exchanges)
    allowed = {exchange: frozenset(ids) for exchange, ids in products.items()}
    holes = sorted(
        (r.hole for r in rows if r.status == OPEN and r.hole.exchange in exchanges),
        key=lambda h: (h.hour, h.exchange, h.product_id, h.first_missing_id),
    )
    fit = [
        h for h in holes
        if (h.exchange not in allowed or h.product_id in allowed[h.exchange]) and h.count <= max_ids
    ]  # fmt: skip
    return [BackfillRequest(h, run_tag) for h in fit[:max_requests]]
