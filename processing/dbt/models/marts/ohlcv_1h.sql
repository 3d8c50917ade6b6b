-- Hourly candles per (exchange, product_id, candle_start), rolled up from ohlcv_1m.
with rolled as (
    {{ rollup_candles('hour') }}
)

select
    exchange,
    product_id,
    period_start as candle_start,
    period_end as candle_end,
    open, high, low, close, volume, notional, vwap, trade_count, buy_volume, sell_volume,
    max_ingest_time
from rolled
