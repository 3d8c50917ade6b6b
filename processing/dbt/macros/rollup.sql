{# Coarser candles from ohlcv_1m: open of the first minute, close of the last, extremes and sums
   over all; VWAP from the summed notional, so it equals the trade-level VWAP exactly. #}
{% macro rollup_candles(datepart) -%}
select
    exchange,
    product_id,
    {{ bucket_start(datepart, 'candle_start') }} as period_start,
    {{ dbt.dateadd(datepart, 1, bucket_start(datepart, 'candle_start')) }} as period_end,
    cast(min_by(open, candle_start) as decimal(38, 18)) as open,
    cast(max(high) as decimal(38, 18)) as high,
    cast(min(low) as decimal(38, 18)) as low,
    cast(max_by(close, candle_start) as decimal(38, 18)) as close,
    cast(sum(volume) as decimal(38, 18)) as volume,
    cast(sum(notional) as decimal(38, 18)) as notional,
    {{ divide_money('sum(notional)', 'sum(volume)') }} as vwap,
    cast(sum(trade_count) as bigint) as trade_count,
    cast(sum(buy_volume) as decimal(38, 18)) as buy_volume,
    cast(sum(sell_volume) as decimal(38, 18)) as sell_volume,
    max(max_ingest_time) as max_ingest_time
from {{ ref('ohlcv_1m') }}
group by exchange, product_id, {{ bucket_start(datepart, 'candle_start') }}
{%- endmacro %}
