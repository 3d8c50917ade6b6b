"""What each quality suite validates for a window ``[start, end)``: one SQL query per dataset.

Pure SQL builders over the catalog attached as ``lake`` (see ``processing.duckdb_engine``); the
window parameters are bound, never formatted in. Silver is selected by ingest time (what an hourly
silver run owns), gold by the minutes those silver rows fall in, so late trades are included.
"""

from __future__ import annotations

from dataclasses import dataclass

from infrastructure.tables import SILVER_TRADES


@dataclass(frozen=True)
class Dataset:
    name: str
    sql: str  # two parameters: window start, window end (timestamptz)


SILVER_COLUMNS = tuple(f.name for f in SILVER_TRADES.schema.fields)

SILVER_TRADES_WINDOW = Dataset(
    "silver_trades",
    f"select {', '.join(SILVER_COLUMNS)} from lake.silver.trades where ingest_time >= $1 and ingest_time < $2",
)

# candles of every minute that holds a trade ingested in the window
_TOUCHED_MINUTES = """
    select distinct exchange, product_id, date_trunc('minute', event_time) as candle_start
    from lake.silver.trades where ingest_time >= $1 and ingest_time < $2
"""

GOLD_OHLCV_1M_WINDOW = Dataset(
    "gold_ohlcv_1m",
    f"""select c.* from lake.gold.ohlcv_1m as c
        inner join ({_TOUCHED_MINUTES}) as m using (exchange, product_id, candle_start)""",
)

GOLD_OHLCV_1H_WINDOW = Dataset(
    "gold_ohlcv_1h",
    f"""select c.* from lake.gold.ohlcv_1h as c
        inner join (select distinct exchange, product_id, date_trunc('hour', candle_start) as candle_start
                    from ({_TOUCHED_MINUTES})) as m using (exchange, product_id, candle_start)""",
)

# every venue-vs-reference and venue-vs-venue row of those minutes (gold.price_deviation_1m)
GOLD_PRICE_DEVIATION_1M_WINDOW = Dataset(
    "gold_price_deviation_1m",
    f"""select d.* from lake.gold.price_deviation_1m as d
        inner join ({_TOUCHED_MINUTES}) as m using (exchange, product_id, candle_start)""",
)

# One row of counts that must reconcile. Every bronze row ingested in the window is exactly one
# of: the silver winner for its key (same Kafka lineage), a rejected row (same lineage), or a
# duplicate of a key silver holds; `lost_rows` counts the rest. `gold_count_mismatches` counts
# touched minutes whose gold trade_count differs from the silver rows in that minute.
RECONCILIATION = Dataset(
    "reconciliation",
    f"""
    with bronze as (
        select * from lake.bronze.trades where ingest_time >= $1 and ingest_time < $2
    ),
    classified as (
        select
            b.ingest_time,
            s.kafka_offset is not null as is_winner,
            r.kafka_offset is not null as is_rejected,
            k.trade_id is not null as key_in_silver
        from bronze as b
        left join lake.silver.trades as s
            on s.kafka_topic = b.kafka_topic and s.kafka_partition = b.kafka_partition
            and s.kafka_offset = b.kafka_offset
        left join lake.silver.trades_rejected as r
            on r.kafka_topic = b.kafka_topic and r.kafka_partition = b.kafka_partition
            and r.kafka_offset = b.kafka_offset
        left join (select distinct exchange, product_id, trade_id from lake.silver.trades) as k
            on k.exchange = b.exchange and k.product_id = b.product_id and k.trade_id = b.trade_id
    ),
    silver_minutes as (
        select exchange, product_id, date_trunc('minute', event_time) as candle_start, count(*) as trades
        from lake.silver.trades
        where (exchange, product_id, date_trunc('minute', event_time)) in (
            select (exchange, product_id, candle_start) from ({_TOUCHED_MINUTES}))
        group by all
    ),
    refined as (
        select max(ingest_time) as newest from (
            select ingest_time from lake.silver.trades where ingest_time >= $1 and ingest_time < $2
            union all
            select ingest_time from lake.silver.trades_rejected where ingest_time >= $1 and ingest_time < $2)
    )
    select
        (select count(*) from classified) as bronze_rows,
        (select count(*) from classified where is_winner) as silver_rows,
        (select count(*) from classified where is_rejected) as rejected_rows,
        (select count(*) from classified where not is_winner and not is_rejected and key_in_silver)
            as duplicate_rows,
        (select count(*) from classified where not is_winner and not is_rejected and not key_in_silver)
            as lost_rows,
        (select count(*) from silver_minutes as m
            left join lake.gold.ohlcv_1m as g using (exchange, product_id, candle_start)
            where g.trade_count is distinct from m.trades) as gold_count_mismatches,
        coalesce(date_diff('second', (select newest from refined),
            (select max(ingest_time) from classified where not key_in_silver or is_winner or is_rejected)), 0)
            as silver_lag_seconds,
        coalesce(date_diff('second', (select max(max_ingest_time) from lake.gold.ohlcv_1m),
            (select max(ingest_time) from lake.silver.trades where ingest_time >= $1 and ingest_time < $2)), 0)
            as gold_lag_seconds
    """,
)

DATASETS = (
    SILVER_TRADES_WINDOW, GOLD_OHLCV_1M_WINDOW, GOLD_OHLCV_1H_WINDOW, RECONCILIATION,
    GOLD_PRICE_DEVIATION_1M_WINDOW,
)  # fmt: skip
