-- Daily metrics per (exchange, product_id, day): OHLC, simple return, realized volatility, VWAP.
-- Realized volatility = sqrt(sum of squared log returns between consecutive traded minutes of the
-- day), not annualized; minutes without trades are skipped. Only the logarithm leaves decimals.
with days as (
    {{ rollup_candles('day') }}
),

minute_returns as (
    select
        exchange,
        product_id,
        {{ bucket_start('day', 'candle_start') }} as day_start,
        ln(cast(close as double) / cast(lag(close) over (
            partition by exchange, product_id, {{ bucket_start('day', 'candle_start') }}
            order by candle_start
        ) as double)) as log_return
    from {{ ref('ohlcv_1m') }}
),

volatility as (
    select
        exchange,
        product_id,
        day_start,
        sqrt(sum(log_return * log_return)) as realized_volatility,
        count(log_return) as return_count
    from minute_returns
    group by exchange, product_id, day_start
)

select
    d.exchange,
    d.product_id,
    d.period_start as day_start,
    d.open, d.high, d.low, d.close,
    {{ divide_money('d.close - d.open', 'd.open') }} as day_return,
    case when v.return_count > 0 then v.realized_volatility end as realized_volatility,
    d.vwap,
    d.volume,
    d.notional,
    d.trade_count,
    d.max_ingest_time
from days as d
inner join volatility as v
    on d.exchange = v.exchange
    and d.product_id = v.product_id
    and d.period_start = v.day_start
