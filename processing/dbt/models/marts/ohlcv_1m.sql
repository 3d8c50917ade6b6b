-- One-minute candles per (exchange, product_id, candle_start); the base of every coarser grain.
-- open/close are the first/last trade by (event_time, trade_id), so ties resolve deterministically.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['exchange', 'product_id', 'candle_start'],
    on_schema_change='fail',
) }}

with trades as (
    {{ trades_in_scope(ref('stg_silver__trades'), silver_source('trades')) }}
),

candles as (
    select
        exchange,
        product_id,
        {{ bucket_start('minute', 'event_time') }} as candle_start,
        -- one pass, no sort: the price of the smallest/largest (event_time, trade_id)
        min_by(price, row(event_time, trade_id)) as open,
        max(price) as high,
        min(price) as low,
        max_by(price, row(event_time, trade_id)) as close,
        sum(size) as volume,
        sum({{ trade_notional('price', 'size') }}) as notional,
        count(*) as trade_count,
        coalesce(sum(case when taker_side = 'buy' then size end), 0) as buy_volume,
        coalesce(sum(case when taker_side = 'sell' then size end), 0) as sell_volume,
        sum(case when taker_side = 'buy' then 1 else 0 end) as buy_count,
        sum(case when taker_side = 'sell' then 1 else 0 end) as sell_count,
        min(event_time) as first_trade_time,
        max(event_time) as last_trade_time,
        max(ingest_time) as max_ingest_time
    from trades
    group by exchange, product_id, {{ bucket_start('minute', 'event_time') }}
)

select
    exchange,
    product_id,
    candle_start,
    {{ dbt.dateadd('minute', 1, 'candle_start') }} as candle_end,
    cast(open as decimal(38, 18)) as open,
    cast(high as decimal(38, 18)) as high,
    cast(low as decimal(38, 18)) as low,
    cast(close as decimal(38, 18)) as close,
    cast(volume as decimal(38, 18)) as volume,
    cast(notional as decimal(38, 18)) as notional,
    {{ divide_money('notional', 'volume') }} as vwap,
    cast(trade_count as bigint) as trade_count,
    cast(buy_volume as decimal(38, 18)) as buy_volume,
    cast(sell_volume as decimal(38, 18)) as sell_volume,
    cast(buy_count as bigint) as buy_count,
    cast(sell_count as bigint) as sell_count,
    first_trade_time,
    last_trade_time,
    max_ingest_time
from candles
