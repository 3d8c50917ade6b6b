-- What the alert rules need from gold, one row per (exchange, product_id), over the product's newest
-- hour of candles (the 60 minutes up to its newest candle: what one hourly gold run brings in):
-- the largest absolute 1-minute and 5-minute return (close - open) / open of a 1-minute candle and
-- of a 5-minute bucket of candles, the worst minute's ingestion latency p95/p99, and the deviation
-- from the reference price (largest, and sustained for deviation_sustained_minutes). gold_job pushes
-- these as gauges after each build (processing/gold.py), the rules in
-- monitoring/prometheus/rules/lakehouse.yml compare them with their bands.
with newest as (
    select exchange, product_id, max(candle_start) as newest_candle
    from {{ ref('ohlcv_1m') }}
    group by exchange, product_id
),

recent as (
    select c.*, n.newest_candle
    from {{ ref('ohlcv_1m') }} as c
    inner join newest as n
        on c.exchange = n.exchange and c.product_id = n.product_id
    where c.candle_start > {{ dbt.dateadd('minute', -60, 'n.newest_candle') }}
),

five_minutes as (
    select
        exchange,
        product_id,
        {{ bucket_start_minutes(5, 'candle_start') }} as bucket_start,
        min_by(open, candle_start) as open,
        max_by(close, candle_start) as close
    from recent
    group by exchange, product_id, {{ bucket_start_minutes(5, 'candle_start') }}
),

moves as (
    select
        exchange,
        product_id,
        max(abs({{ divide_money('close - open', 'open') }})) as max_abs_return_1m
    from recent
    group by exchange, product_id
),

moves_5m as (
    select
        exchange,
        product_id,
        max(abs({{ divide_money('close - open', 'open') }})) as max_abs_return_5m
    from five_minutes
    group by exchange, product_id
),

latency as (
    select
        l.exchange,
        l.product_id,
        max(l.latency_p95_ms) as latency_p95_ms,
        max(l.latency_p99_ms) as latency_p99_ms
    from {{ ref('ingestion_latency_1m') }} as l
    inner join newest as n
        on l.exchange = n.exchange and l.product_id = n.product_id
    where l.candle_start > {{ dbt.dateadd('minute', -60, 'n.newest_candle') }}
    group by l.exchange, l.product_id
),

-- the venue's deviation from its reference price (price_deviation_1m, versus_kind 'reference'):
-- the largest, and the one exceeded in at least deviation_sustained_minutes minutes (the Nth
-- largest |deviation|; null with fewer minutes): a band it passes was passed for that many minutes
deviations as (
    select
        d.exchange,
        d.product_id,
        abs(d.deviation_bps) as abs_deviation_bps,
        row_number() over (
            partition by d.exchange, d.product_id order by abs(d.deviation_bps) desc, d.candle_start
        ) as deviation_rank
    from {{ ref('price_deviation_1m') }} as d
    inner join newest as n
        on d.exchange = n.exchange and d.product_id = n.product_id
    where d.versus_kind = 'reference'
        and d.candle_start > {{ dbt.dateadd('minute', -60, 'n.newest_candle') }}
),

deviation as (
    select
        exchange,
        product_id,
        max(abs_deviation_bps) as max_abs_deviation_bps,
        max(case when deviation_rank = {{ var('deviation_sustained_minutes') }} then abs_deviation_bps end)
            as sustained_deviation_bps
    from deviations
    group by exchange, product_id
)

select
    n.exchange,
    n.product_id,
    n.newest_candle,
    cast(m.max_abs_return_1m as decimal(38, 18)) as max_abs_return_1m,
    cast(f.max_abs_return_5m as decimal(38, 18)) as max_abs_return_5m,
    cast(l.latency_p95_ms as bigint) as latency_p95_ms,
    cast(l.latency_p99_ms as bigint) as latency_p99_ms,
    cast(dv.max_abs_deviation_bps as decimal(38, 18)) as max_abs_deviation_bps,
    cast(dv.sustained_deviation_bps as decimal(38, 18)) as sustained_deviation_bps
from newest as n
inner join moves as m on n.exchange = m.exchange and n.product_id = m.product_id
inner join moves_5m as f on n.exchange = f.exchange and n.product_id = f.product_id
left join latency as l on n.exchange = l.exchange and n.product_id = l.product_id
left join deviation as dv on n.exchange = dv.exchange and n.product_id = dv.product_id
