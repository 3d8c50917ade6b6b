-- Each venue's 1-minute VWAP against a reference, in basis points, exact:
--   deviation_bps = (vwap - versus_price) * 10000 / versus_price   (decimal(38,18), half away from 0)
-- Key (exchange, product_id, candle_start, versus). Two kinds of row (versus_kind):
-- * 'reference': versus is the reference source (coingecko). versus_price is the latest reference
--   price of the product at or before the minute's end and at most reference_max_staleness_s older
--   than it (no row for a minute without one); versus_time is that price's last_updated_at.
-- * 'venue': versus is another exchange with a candle of the same product in the same minute;
--   versus_price is its VWAP, versus_time its last trade of the minute. Both directions are rows.
-- The canonical-product rule: prices are compared only under the same product_id. BTC-USD and
-- BTC-USDT are different products (the quote currencies differ); a reference reaches a product
-- only through the coin:currency -> product mapping in settings (coingecko.products, e.g.
-- bitcoin:usdt=BTC-USDT to compare Binance's BTC-USDT). Synthetic venues (exchange synthetic*)
-- are compared only with synthetic ones and the synthetic reference, real ones only with real ones.
-- Incremental like the candles: every minute whose candle of any venue changed within the lookback
-- is recomputed for all its venues (a late trade on one venue moves the other's 'venue' row too).
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['exchange', 'product_id', 'candle_start', 'versus'],
    on_schema_change='fail',
) }}

with touched as (
    select distinct product_id, candle_start
    from {{ ref('ohlcv_1m') }}
    {%- if incremental_run() %}
    where coalesce(max_ingest_time > (
        select {{ dbt.dateadd('hour', -1 * var('late_data_lookback_hours'), 'max(max_ingest_time)') }}
        from {{ this }}
    ), true)
    {%- endif %}
),

candles as (
    select
        o.exchange,
        o.product_id,
        o.candle_start,
        o.candle_end,
        o.vwap,
        o.trade_count,
        o.last_trade_time,
        o.max_ingest_time,
        o.exchange like 'synthetic%' as synthetic
    from {{ ref('ohlcv_1m') }} as o
    inner join touched as t on o.product_id = t.product_id and o.candle_start = t.candle_start
    where o.vwap is not null
        and o.candle_start >= (select min(candle_start) from touched)
),

reference_prices as (
    select source, product_id, price, event_time, source like 'synthetic%' as synthetic
    from {{ ref('stg_silver__reference_prices') }}
    where event_time > (
        select {{ dbt.dateadd('second', -1 * var('reference_max_staleness_s'), 'min(candle_start)') }}
        from touched
    )
),

{%- set candle_columns -%}
        c.exchange,
        c.product_id,
        c.candle_start,
        c.candle_end,
        c.vwap,
        c.trade_count,
        c.max_ingest_time
{%- endset %}

versus_reference as (
    select
        {{ candle_columns }},
        'reference' as versus_kind,
        r.source as versus,
        max_by(r.price, r.event_time) as versus_price,
        max(r.event_time) as versus_time
    from candles as c
    inner join reference_prices as r
        on r.product_id = c.product_id
        and r.synthetic = c.synthetic
        and r.event_time <= c.candle_end
        and r.event_time > {{ dbt.dateadd('second', -1 * var('reference_max_staleness_s'), 'c.candle_end') }}
    group by {{ candle_columns }}, r.source
),

versus_venue as (
    select
        {{ candle_columns }},
        'venue' as versus_kind,
        o.exchange as versus,
        o.vwap as versus_price,
        o.last_trade_time as versus_time
    from candles as c
    inner join candles as o
        on o.product_id = c.product_id
        and o.candle_start = c.candle_start
        and o.exchange <> c.exchange
        and o.synthetic = c.synthetic
),

compared as (
    select * from versus_reference
    union all
    select * from versus_venue
)

select
    exchange,
    product_id,
    candle_start,
    candle_end,
    versus_kind,
    versus,
    cast(vwap as decimal(38, 18)) as vwap,
    cast(versus_price as decimal(38, 18)) as versus_price,
    versus_time,
    {{ divide_money('(vwap - versus_price) * 10000', 'versus_price') }} as deviation_bps,
    cast(trade_count as bigint) as trade_count,
    max_ingest_time
from compared
where versus_price > 0
