-- Ingestion latency (bronze ingest time - exchange event time) per (exchange, product_id,
-- candle_start of event time): p50/p95/p99 and max in milliseconds.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['exchange', 'product_id', 'candle_start'],
    on_schema_change='fail',
) }}

with trades as (
    {{ trades_in_scope(ref('stg_silver__trades'), source('silver', 'trades')) }}
)

select
    exchange,
    product_id,
    {{ bucket_start('minute', 'event_time') }} as candle_start,
    cast({{ percentile('ingest_latency_ms', 0.5) }} as bigint) as latency_p50_ms,
    cast({{ percentile('ingest_latency_ms', 0.95) }} as bigint) as latency_p95_ms,
    cast({{ percentile('ingest_latency_ms', 0.99) }} as bigint) as latency_p99_ms,
    max(ingest_latency_ms) as latency_max_ms,
    count(*) as trade_count,
    max(ingest_time) as max_ingest_time
from trades
group by exchange, product_id, {{ bucket_start('minute', 'event_time') }}
