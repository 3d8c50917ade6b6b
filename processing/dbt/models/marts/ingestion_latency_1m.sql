-- Ingestion latency (bronze ingest time - exchange event time) per (exchange, product_id,
-- candle_start of event time): p50/p95/p99 and max in milliseconds; and the part of it spent
-- waiting in Kafka for the bronze writer (ingest time - Kafka record time), which tells a slow
-- writer from a slow exchange or producer. kafka_wait_* came with silver.trades.kafka_timestamp
-- (schema evolution, docs/iceberg.md): NULL for minutes whose trades were refined before it.
-- The wait is dbt.datediff's: whole milliseconds between the instants truncated to the millisecond.
-- on_schema_change='append_new_columns': a table built by the previous model gains the new
-- columns in place (old rows NULL) instead of failing or needing a full refresh.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['exchange', 'product_id', 'candle_start'],
    on_schema_change='append_new_columns',
) }}

{%- set kafka_wait = dbt.datediff('kafka_timestamp', 'ingest_time', 'millisecond') -%}

with trades as (
    {{ trades_in_scope(ref('stg_silver__trades'), silver_source('trades')) }}
)

select
    exchange,
    product_id,
    {{ bucket_start('minute', 'event_time') }} as candle_start,
    cast({{ percentile('ingest_latency_ms', 0.5) }} as bigint) as latency_p50_ms,
    cast({{ percentile('ingest_latency_ms', 0.95) }} as bigint) as latency_p95_ms,
    cast({{ percentile('ingest_latency_ms', 0.99) }} as bigint) as latency_p99_ms,
    max(ingest_latency_ms) as latency_max_ms,
    cast({{ percentile(kafka_wait, 0.95) }} as bigint) as kafka_wait_p95_ms,
    max({{ kafka_wait }}) as kafka_wait_max_ms,
    count(*) as trade_count,
    max(ingest_time) as max_ingest_time
from trades
group by exchange, product_id, {{ bucket_start('minute', 'event_time') }}
