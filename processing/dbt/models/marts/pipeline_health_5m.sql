-- Pipeline health in 5-minute buckets per (exchange, product_id, bucket_start), over the
-- var('pipeline_health_days') days before the newest silver row (bounded: a fixed number of
-- buckets per product, whatever the table's age). For each bucket:
--   trade_count / ingested_count: silver trades by exchange event time / by ingest time in it;
--   seconds_since_last_trade / seconds_since_last_ingest: from the newest event / ingest time at
--   or before the bucket's end to that end (null before the product's first one in the window).
-- Buckets run from the product's first bucket in the window to the newest bucket of all products,
-- with or without trades, so a product that went quiet shows its silence growing.
{%- set bucket_count = var('pipeline_health_days') * 288 %}

with trades as (
    select exchange, product_id, event_time, ingest_time
    from {{ ref('stg_silver__trades') }}
),

newest as (
    select {{ bucket_start_minutes(5, 'greatest(max(event_time), max(ingest_time))') }} as bucket_start
    from trades
),

window_trades as (
    select t.*
    from trades as t
    cross join newest
    where t.ingest_time >= {{ dbt.dateadd('minute', -5 * (bucket_count - 1), 'newest.bucket_start') }}
        or t.event_time >= {{ dbt.dateadd('minute', -5 * (bucket_count - 1), 'newest.bucket_start') }}
),

by_event as (
    select
        exchange,
        product_id,
        {{ bucket_start_minutes(5, 'event_time') }} as bucket_start,
        count(*) as trade_count,
        max(event_time) as last_trade_time
    from window_trades
    group by exchange, product_id, {{ bucket_start_minutes(5, 'event_time') }}
),

by_ingest as (
    select
        exchange,
        product_id,
        {{ bucket_start_minutes(5, 'ingest_time') }} as bucket_start,
        count(*) as ingested_count,
        max(ingest_time) as last_ingest_time
    from window_trades
    group by exchange, product_id, {{ bucket_start_minutes(5, 'ingest_time') }}
),

steps as (
    select cast(generated_number as bigint) - 1 as step
    from ({{ dbt.generate_series(bucket_count) }}) as series
),

spine as (
    select
        p.exchange,
        p.product_id,
        {{ dbt.dateadd('minute', '-5 * s.step', 'newest.bucket_start') }} as bucket_start
    from (
        select exchange, product_id, min(bucket_start) as first_bucket
        from (
            select exchange, product_id, bucket_start from by_event
            union all
            select exchange, product_id, bucket_start from by_ingest
        ) as buckets
        group by exchange, product_id
    ) as p
    cross join newest
    cross join steps as s
    where {{ dbt.dateadd('minute', '-5 * s.step', 'newest.bucket_start') }} >= p.first_bucket
),

filled as (
    select
        s.exchange,
        s.product_id,
        s.bucket_start,
        {{ dbt.dateadd('minute', 5, 's.bucket_start') }} as bucket_end,
        coalesce(e.trade_count, 0) as trade_count,
        coalesce(i.ingested_count, 0) as ingested_count,
        max(e.last_trade_time) over (
            partition by s.exchange, s.product_id order by s.bucket_start rows unbounded preceding
        ) as last_trade_time,
        max(i.last_ingest_time) over (
            partition by s.exchange, s.product_id order by s.bucket_start rows unbounded preceding
        ) as last_ingest_time
    from spine as s
    left join by_event as e
        on s.exchange = e.exchange and s.product_id = e.product_id and s.bucket_start = e.bucket_start
    left join by_ingest as i
        on s.exchange = i.exchange and s.product_id = i.product_id and s.bucket_start = i.bucket_start
)

select
    exchange,
    product_id,
    bucket_start,
    bucket_end,
    cast(trade_count as bigint) as trade_count,
    cast(ingested_count as bigint) as ingested_count,
    last_trade_time,
    last_ingest_time,
    cast({{ dbt.datediff('last_trade_time', 'bucket_end', 'millisecond') }} as double) / 1000 as seconds_since_last_trade,
    cast({{ dbt.datediff('last_ingest_time', 'bucket_end', 'millisecond') }} as double) / 1000 as seconds_since_last_ingest
from filled
