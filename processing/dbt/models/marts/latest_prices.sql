-- Latest price per (exchange, product_id): the close of its newest 1m candle (its last trade).
with ranked as (
    select
        *,
        row_number() over (partition by exchange, product_id order by candle_start desc) as nth_newest
    from {{ ref('ohlcv_1m') }}
)

select
    exchange,
    product_id,
    close as price,
    last_trade_time,
    candle_start as last_candle_start,
    max_ingest_time
from ranked
where nth_newest = 1
