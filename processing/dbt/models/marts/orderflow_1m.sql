-- Order flow per (exchange, product_id, candle_start): taker buy vs sell volume.
-- imbalance_ratio = (buy - sell) / (buy + sell), in [-1, 1]. Incremental like ohlcv_1m: every
-- 1m candle rewritten since the last run (a touched minute carries a newer max_ingest_time) is
-- taken again.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['exchange', 'product_id', 'candle_start'],
    on_schema_change='fail',
) }}

select
    exchange,
    product_id,
    candle_start,
    buy_volume,
    sell_volume,
    buy_count,
    sell_count,
    {{ divide_money('buy_volume - sell_volume', 'buy_volume + sell_volume') }} as imbalance_ratio,
    max_ingest_time
from {{ ref('ohlcv_1m') }}
{% if incremental_run() %}
where max_ingest_time > (
    select {{ dbt.dateadd('hour', -1 * var('late_data_lookback_hours'), 'max(max_ingest_time)') }}
    from {{ this }}
)
or (select count(*) from {{ this }}) = 0
{% endif %}
