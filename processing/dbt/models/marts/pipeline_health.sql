-- Freshness and counts per stage (one row per stage): rows, newest event and ingest time, and
-- seconds since the newest ingest at build time. Silver + rejected should reconcile with bronze
-- minus duplicates; the quality suite checks that per window.
with stages as (
    select 'bronze' as stage, count(*) as row_count, max(event_time) as last_event_time,
        max(ingest_time) as last_ingest_time
    from {{ ref('stg_bronze__trades') }}
    union all
    select 'silver', count(*), max(event_time), max(ingest_time)
    from {{ ref('stg_silver__trades') }}
    union all
    select 'silver_rejected', count(*), max(event_time), max(ingest_time)
    from {{ ref('stg_silver__trades_rejected') }}
    union all
    select 'gold_ohlcv_1m', sum(trade_count), max(last_trade_time), max(max_ingest_time)
    from {{ ref('ohlcv_1m') }}
)

select
    stage,
    cast(coalesce(row_count, 0) as bigint) as row_count,
    last_event_time,
    last_ingest_time,
    {{ dbt.current_timestamp() }} as checked_at,
    {{ dbt.datediff('last_ingest_time', dbt.current_timestamp(), 'second') }} as freshness_seconds
from stages
