-- Traded volume per (exchange, product_id, hour_start) for a heatmap of hours x products:
-- base volume, quote notional (comparable across products), trade count, the UTC hour of day, and
-- the hour's share of the product's notional over its trailing 24 hours (so products of very
-- different sizes share one colour scale).
with hours as (
    select exchange, product_id, candle_start as hour_start, volume, notional, trade_count, max_ingest_time
    from {{ ref('ohlcv_1h') }}
)

select
    h.exchange,
    h.product_id,
    h.hour_start,
    cast({{ dbt.datediff(bucket_start('day', 'h.hour_start'), 'h.hour_start', 'hour') }} as integer) as hour_of_day,
    h.volume,
    h.notional,
    h.trade_count,
    {{ divide_money('h.notional', 'r.notional_24h') }} as notional_share_24h,
    h.max_ingest_time
from hours as h
inner join {{ ref('rolling_24h') }} as r
    on h.exchange = r.exchange and h.product_id = r.product_id and h.hour_start = r.hour_start
