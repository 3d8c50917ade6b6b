"""``run_completeness``: check silver's trade ids over a window of exchange time, record the holes in
``silver.trade_gaps``, close the ones now filled, and list the holes to backfill; ``completeness_job``:
the same as one pushed job run (``job="completeness"``), what the CLI and the Airflow tasks call.

Both stacks run it the same way: DuckDB reads silver through the Iceberg REST catalog (SeaweedFS's
embedded, Nessie's in compose) and pyiceberg commits the few gap rows. The compose stack's Spark is
not involved: the check reads one window and writes a handful of rows, and the SQL is the same
canonical Spark SQL the silver job uses (:mod:`processing.silver.completeness`).

Dead letters come from two places: the DLQ topic (frames refused at ingest, keyed
``exchange:product_id`` when they name a trade id), read from ``start - lookback`` on, and
``silver.trades_rejected`` (rows silver refused). The table is rewritten whole in one commit, and
only when a row changed; a concurrent commit (the hourly check and a backfill's re-check) makes
the check read the table again and redo its reconciliation, a bounded number of times.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from infrastructure.job_metrics import run_and_push
from infrastructure.settings import Settings
from infrastructure.tables import SILVER_TRADE_GAPS, SILVER_TRADES, SILVER_TRADES_REJECTED
from infrastructure.times import Window
from processing.silver import completeness as c
from processing.silver.completeness import GapRow
from processing.silver.sql import to_dialect

log = logging.getLogger(__name__)
JOB = "completeness"
GAPS_ARROW = SILVER_TRADE_GAPS.schema.as_arrow()
COMMIT_ATTEMPTS = 3
DLQ_READ_TIMEOUT_S = 30.0  # bounds the DLQ scan in time as max_dead_letters bounds it in count
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class CompletenessResult:
    start: datetime
    end: datetime
    holes_found: int  # holes (what is really missing) with their next trade in the window
    missing_found: int  # trade ids in them
    dead_lettered: int  # ids cut out of the window's holes because they were dead-lettered
    new_gaps: int  # rows opened by this check
    filled: int  # open rows this check closed
    open_gaps: int  # open rows in the table after the check (every hour)
    open_missing: int  # trade ids still missing in them
    committed: bool
    duration_s: float
    backfills: list[dict] = field(default_factory=list)  # TriggerDagRunOperator kwargs

    def metric_counts(self) -> dict[str, int]:
        """``lakehouse_job_rows{job="completeness", kind=...}``: what the alert rules read."""
        return {
            "missing_found": self.missing_found, "dead_lettered": self.dead_lettered,
            "gaps_new": self.new_gaps, "gaps_filled": self.filled, "gaps_open": self.open_gaps,
            "missing_open": self.open_missing, "backfills_requested": len(self.backfills),
        }  # fmt: skip

    def summary(self) -> str:
        return (
            f"completeness [{self.start.isoformat()}, {self.end.isoformat()}): {self.holes_found} holes "
            f"({self.missing_found} trade ids missing, {self.dead_lettered} dead-lettered), "
            f"{self.new_gaps} new, {self.filled} filled; open now: {self.open_gaps} "
            f"({self.open_missing} ids); {len(self.backfills)} backfills requested"
        )


def read_dead_letters(settings: Settings, since: datetime) -> list[tuple[str, str, int]]:
    """(exchange, product_id, trade_id) of the DLQ messages since ``since`` that name a trade."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    from infrastructure.kafka import consumer_config
    from ingestion.dead_letters import dead_lettered_trade

    topic, limit = settings.kafka.dlq_topic, settings.completeness.max_dead_letters
    # assigned partitions, never committed: the group id only names the reader
    consumer = Consumer(
        consumer_config(settings.kafka, "lakehouse-completeness", **{"enable.partition.eof": True})
    )
    found: list[tuple[str, str, int]] = []
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None or limit == 0:
            return found
        at = int(since.timestamp() * 1000)
        starts = consumer.offsets_for_times(
            [TopicPartition(topic, p, at) for p in meta.partitions], timeout=10
        )
        todo = {}
        for tp in starts:
            end = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)[1]
            if 0 <= tp.offset < end:
                todo[tp.partition] = end
        if not todo:
            return found
        consumer.assign([tp for tp in starts if tp.partition in todo])
        read, deadline = 0, time.monotonic() + DLQ_READ_TIMEOUT_S
        while todo and read < limit and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=1.0):
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        todo.pop(msg.partition(), None)
                    continue
                read += 1
                if msg.offset() + 1 >= todo.get(msg.partition(), 0):
                    todo.pop(msg.partition(), None)
                named = dead_lettered_trade(msg.key(), msg.value())
                if named is not None:
                    found.append(named)
        if todo:
            log.warning(
                "DLQ scan stopped after %d messages (bound reached); later dead letters not read", read
            )
    finally:
        consumer.close()
    return found


def _load_rows(table) -> list[GapRow]:
    return [GapRow.from_record(r) for r in table.scan().to_arrow().to_pylist()]


def run_completeness(
    settings: Settings,
    start: datetime,
    end: datetime,
    recheck_hours: int = 0,
    now: datetime | None = None,
) -> CompletenessResult:
    """Check ``[start - recheck_hours h, end)`` of exchange time; see the module docstring."""
    from confluent_kafka import KafkaException
    from pyiceberg.exceptions import CommitFailedException

    from infrastructure.catalog import load_catalog
    from processing import duckdb_engine

    began = time.perf_counter()
    start = start.astimezone(UTC) - recheck_hours * HOUR
    end = end.astimezone(UTC)
    cfg = settings.completeness
    lookback = timedelta(seconds=cfg.lookback_s)
    alias = duckdb_engine.CATALOG_ALIAS
    silver = f"{alias}.{SILVER_TRADES.identifier}"
    rejected = f"{alias}.{SILVER_TRADES_REJECTED.identifier}"

    try:
        dlq = read_dead_letters(settings, start - lookback)
    except KafkaException as exc:
        # not fatal: an id dead-lettered at ingest then shows as a hole, and its backfill (the same
        # trade again, dead-lettered again) is wasted work, not lost data; the next check reads it
        log.warning(
            "DLQ %s unreadable (%s): dead-lettered ids may be reported as holes",
            settings.kafka.dlq_topic,
            exc,
        )
        dlq = []
    con = duckdb_engine.connect(settings)
    try:
        con.execute("SET enable_progress_bar = false")
        con.register("dlq_ids", pa.table({
            "exchange": pa.array([d[0] for d in dlq], pa.string()),
            "product_id": pa.array([d[1] for d in dlq], pa.string()),
            "trade_id": pa.array([d[2] for d in dlq], pa.int64()),
        }))  # fmt: skip
        con.execute(
            "CREATE TEMP TABLE dead_ids AS SELECT exchange, product_id, trade_id FROM dlq_ids UNION "
            + to_dialect(c.rejected_ids_sql(rejected, start - lookback), "duckdb")
        )
        dead = c.index_dead(con.execute("SELECT exchange, product_id, trade_id FROM dead_ids").fetchall())
        raw = con.execute(to_dialect(c.holes_sql(silver, start, end, lookback), "duckdb")).fetchall()
        holes = [c.Hole(e, p, first, last, hour.astimezone(UTC)) for e, p, hour, first, last in raw]
        missing, refused = c.split_dead_letters(holes, dead)

        catalog = load_catalog(settings)
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            table = catalog.load_table(SILVER_TRADE_GAPS.identifier)
            existing = _load_rows(table)
            checked_at = now or datetime.now(UTC)
            open_rows = [r.hole for r in existing if r.status == c.OPEN]
            present: dict[int, int] = {}
            if open_rows:
                counts = dict(
                    con.execute(
                        to_dialect(c.coverage_sql(silver, "dead_ids", open_rows), "duckdb")
                    ).fetchall()
                )
                positions = [i for i, r in enumerate(existing) if r.status == c.OPEN]
                present = {i: counts.get(n, 0) for n, i in enumerate(positions)}
            rows = c.reconcile(
                existing, present, missing, refused, checked_at, timedelta(days=cfg.retention_days)
            )
            changed = rows != existing
            if not changed:
                break
            try:
                table.overwrite(pa.Table.from_pylist([r.as_record() for r in rows], schema=GAPS_ARROW))
                break
            except CommitFailedException as exc:
                if attempt == COMMIT_ATTEMPTS:
                    raise
                log.warning("silver.trade_gaps changed meanwhile (%s); checking again", exc)
    finally:
        con.close()

    still_open = [r for r in rows if r.status == c.OPEN]
    requests = c.backfill_requests(
        still_open, cfg.backfill_exchanges, {"coinbase": settings.products}, cfg.max_backfill_ids,
        cfg.max_backfills_per_run, end.strftime("%Y%m%dT%H%M%S"),
    )  # fmt: skip
    skipped = len([r for r in still_open if r.hole.exchange in cfg.backfill_exchanges]) - len(requests)
    if skipped > 0:
        log.warning(
            "%d open gaps not sent to backfill (too large, product not configured, or over the per-run bound)",
            skipped,
        )
    return CompletenessResult(
        start=start,
        end=end,
        holes_found=len(missing),
        missing_found=sum(h.count for h in missing),
        dead_lettered=sum(h.count for h in refused),
        new_gaps=len([r for r in still_open if r.detected_at == checked_at]),
        filled=len([r for r in rows if r.status == c.FILLED and r.filled_at == checked_at]),
        open_gaps=len(still_open),
        open_missing=sum(r.missing_count for r in still_open),
        committed=changed,
        duration_s=time.perf_counter() - began,
        backfills=[r.trigger_kwargs() for r in requests],
    )


def completeness_job(settings: Settings, window: Window, recheck_hours: int = 0) -> CompletenessResult:
    """One check of ``window`` (plus ``recheck_hours`` before it), its figures pushed as job
    ``completeness`` (``lakehouse_job_rows{kind="missing_open"}`` is what the alert watches)."""
    return run_and_push(
        settings, JOB, lambda: run_completeness(settings, window.start, window.end, recheck_hours),
        CompletenessResult.metric_counts, window.end,
    )  # fmt: skip
