-- Per (exchange, product_id, candle_start): average trade price, price change (close - open) / open,
-- high-low range (high - low) / open, standard deviation of trade prices and trade count. Ratios
-- are exact decimals; the standard deviation (sample, null for a one-trade minute) is a double.
-- Incremental like ohlcv_1m: every touched minute is re-aggregated from all of its trades and
-- joined to its (already rebuilt) candle.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['exchange', 'product_id', 'candle_start'],
    on_schema_change='fail',
) }}

with trades as (
    {{ trades_in_scope(ref('stg_silver__trades'), silver_source('trades')) }}
),

per_minute as (
    select
        exchange,
        product_id,
        {{ bucket_start('minute', 'event_time') }} as candle_start,
        sum(price) as price_sum,
        stddev_samp(cast(price as double)) as price_stddev,
        count(*) as trade_count
    from trades
    group by exchange, product_id, {{ bucket_start('minute', 'event_time') }}
)

select
    c.exchange,
    c.product_id,
    c.candle_start,
    {{ divide_money('m.price_sum', 'm.trade_count') }} as avg_price,
    {{ divide_money('c.close - c.open', 'c.open') }} as price_change,
    {{ divide_money('c.high - c.low', 'c.open') }} as range_ratio,
    m.price_stddev,
    cast(m.trade_count as bigint) as trade_count,
    c.max_ingest_time
from per_minute as m
inner join {{ ref('ohlcv_1m') }} as c
    on c.exchange = m.exchange
    and c.product_id = m.product_id
    and c.candle_start = m.candle_start
