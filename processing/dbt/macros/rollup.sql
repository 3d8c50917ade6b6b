{# Coarser candles from ohlcv_1m: open of the first minute, close of the last, extremes and sums
   over all; VWAP from the summed notional, so it equals the trade-level VWAP exactly. #}
{% macro rollup_candles(datepart) -%}
with minutes as (
    select
        *,
        {{ dbt.date_trunc(datepart, 'candle_start') }} as period_start,
        row_number() over (
            partition by exchange, product_id, {{ dbt.date_trunc(datepart, 'candle_start') }}
            order by candle_start
        ) as nth_first,
        row_number() over (
            partition by exchange, product_id, {{ dbt.date_trunc(datepart, 'candle_start') }}
            order by candle_start desc
        ) as nth_last
    from {{ ref('ohlcv_1m') }}
)

select
    exchange,
    product_id,
    period_start,
    {{ dbt.dateadd(datepart, 1, 'period_start') }} as period_end,
    cast(max(case when nth_first = 1 then open end) as decimal(38, 18)) as open,
    cast(max(high) as decimal(38, 18)) as high,
    cast(min(low) as decimal(38, 18)) as low,
    cast(max(case when nth_last = 1 then close end) as decimal(38, 18)) as close,
    cast(sum(volume) as decimal(38, 18)) as volume,
    cast(sum(notional) as decimal(38, 18)) as notional,
    {{ divide_money('sum(notional)', 'sum(volume)') }} as vwap,
    cast(sum(trade_count) as bigint) as trade_count,
    cast(sum(buy_volume) as decimal(38, 18)) as buy_volume,
    cast(sum(sell_volume) as decimal(38, 18)) as sell_volume,
    max(max_ingest_time) as max_ingest_time
from minutes
group by exchange, product_id, period_start
{%- endmacro %}
