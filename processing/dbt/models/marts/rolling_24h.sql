-- Trailing 24 hours per (exchange, product_id, hour_start): the hour itself and the 23 before it.
-- volume/notional/trade_count/high/low over those hours (exact decimals), price_change from the
-- open of the window's first traded hour to this hour's close, and volatility =
-- sqrt(sum of squared log returns between consecutive traded 1-minute candles) over the window
-- (not annualized; a return belongs to the hour of its later candle; the first candle of a
-- product has none). Hours without trades have no row.
with minute_returns as (
    select
        exchange,
        product_id,
        {{ bucket_start('hour', 'candle_start') }} as hour_start,
        ln(cast(close as double) / cast(lag(close) over (
            partition by exchange, product_id order by candle_start
        ) as double)) as log_return
    from {{ ref('ohlcv_1m') }}
),

hourly_returns as (
    select
        exchange,
        product_id,
        hour_start,
        sum(log_return * log_return) as squared_returns,
        count(log_return) as return_count
    from minute_returns
    group by exchange, product_id, hour_start
),

hours as (
    select
        h.exchange,
        h.product_id,
        h.candle_start as hour_start,
        h.open, h.high, h.low, h.close, h.volume, h.notional, h.trade_count, h.max_ingest_time,
        r.squared_returns,
        r.return_count
    from {{ ref('ohlcv_1h') }} as h
    inner join hourly_returns as r
        on h.exchange = r.exchange and h.product_id = r.product_id and h.candle_start = r.hour_start
),

windowed as (
    select
        h.exchange,
        h.product_id,
        h.hour_start,
        min(w.hour_start) as window_first_hour,
        cast(min_by(w.open, w.hour_start) as decimal(38, 18)) as window_open,
        cast(max(h.close) as decimal(38, 18)) as close,
        cast(max(w.high) as decimal(38, 18)) as high_24h,
        cast(min(w.low) as decimal(38, 18)) as low_24h,
        cast(sum(w.volume) as decimal(38, 18)) as volume_24h,
        cast(sum(w.notional) as decimal(38, 18)) as notional_24h,
        cast(sum(w.trade_count) as bigint) as trade_count_24h,
        sum(w.squared_returns) as squared_returns,
        cast(sum(w.return_count) as bigint) as return_count_24h,
        max(w.max_ingest_time) as max_ingest_time
    from hours as h
    inner join hours as w
        on w.exchange = h.exchange
        and w.product_id = h.product_id
        and w.hour_start > {{ dbt.dateadd('hour', -24, 'h.hour_start') }}
        and w.hour_start <= h.hour_start
    group by h.exchange, h.product_id, h.hour_start
)

select
    exchange,
    product_id,
    hour_start,
    window_first_hour,
    close,
    {{ divide_money('close - window_open', 'window_open') }} as price_change_24h,
    high_24h,
    low_24h,
    volume_24h,
    notional_24h,
    trade_count_24h,
    case when return_count_24h > 0 then sqrt(squared_returns) end as volatility_24h,
    return_count_24h,
    max_ingest_time
from windowed
