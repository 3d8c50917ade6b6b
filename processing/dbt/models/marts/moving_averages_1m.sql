-- Moving averages of 1-minute closes per (exchange, product_id, candle_start), one SMA and one EMA
-- per window in var('moving_average_windows') (default 20 and 50 candles), over the sequence of
-- traded minutes (minutes without trades have no candle and are skipped, as in daily_metrics).
--   sma_N: mean of the last N closes, exact decimal; null until N candles exist.
--   ema_N: exponentially weighted mean with alpha = 2 / (N + 1), over the last
--          N * var('ema_lookback_factor') closes with normalized weights (a double); null until N
--          candles exist. A bounded lookback makes every row a function of a fixed number of
--          preceding candles, so an incremental run computes exactly what a full rebuild computes
--          (a recursive EMA depends on its seed and would drift); the weights left out sum to
--          (1 - alpha)^(N * factor), under 4e-4 at the default factor 4.
--   trend:  'up' when the fastest SMA is above the slowest, 'down' below, 'flat' equal, null
--           until both exist.
-- Incremental: per product, every candle from its earliest minute rebuilt since the last run
-- (ohlcv_1m rows with a newer max_ingest_time) onwards is recomputed, because a late candle shifts
-- the windows of the candles after it. Changing the windows changes the columns: run
-- `lakehouse gold --full-refresh` (on_schema_change='fail' says so).
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['exchange', 'product_id', 'candle_start'],
    on_schema_change='fail',
) }}

{%- set windows = var('moving_average_windows') | map('int') | sort | list -%}
{%- set lookback = windows[-1] * var('ema_lookback_factor') -%}

with ranked as (
    select
        exchange,
        product_id,
        candle_start,
        close,
        max_ingest_time,
        row_number() over (partition by exchange, product_id order by candle_start) as n
    from {{ ref('ohlcv_1m') }}
),

{% if incremental_run() %}
first_changed as (
    select exchange, product_id, min(n) as first_n
    from ranked
    where max_ingest_time > (
        select {{ dbt.dateadd('hour', -1 * var('late_data_lookback_hours'), 'max(max_ingest_time)') }}
        from {{ this }}
    )
    group by exchange, product_id
),

targets as (
    select r.*
    from ranked as r
    inner join first_changed as f
        on r.exchange = f.exchange and r.product_id = f.product_id and r.n >= f.first_n
),

history as (
    select r.*
    from ranked as r
    inner join first_changed as f
        on r.exchange = f.exchange and r.product_id = f.product_id and r.n > f.first_n - {{ lookback }}
),
{% else %}
targets as (select * from ranked),

history as (select * from ranked),
{% endif %}

window_sums as (
    select
        exchange,
        product_id,
        candle_start,
        close,
        max_ingest_time,
        n
        {%- for w in windows %},
        sum(close) over (
            partition by exchange, product_id order by n rows between {{ w - 1 }} preceding and current row
        ) as close_sum_{{ w }}
        {%- endfor %}
    from history
),

simple as (
    select
        *
        {%- for w in windows %},
        case when n >= {{ w }} then {{ divide_money('close_sum_' ~ w, w) }} end as sma_{{ w }}
        {%- endfor %}
    from window_sums
),

-- each target candle with the `lookback` candles up to it: lag = how many candles back
weighted as (
    select
        t.exchange,
        t.product_id,
        t.candle_start,
        t.n - h.n as candles_back,
        cast(h.close as double) as close
    from targets as t
    inner join history as h
        on h.exchange = t.exchange
        and h.product_id = t.product_id
        and h.n between t.n - {{ lookback - 1 }} and t.n
),

exponential as (
    select
        exchange,
        product_id,
        candle_start
        {%- for w in windows %}
        {%- set decay = "(1 - cast(2 as double) / " ~ (w + 1) ~ ")" %},
        sum(case when candles_back < {{ w * var('ema_lookback_factor') }} then power({{ decay }}, candles_back) * close end)
            / sum(case when candles_back < {{ w * var('ema_lookback_factor') }} then power({{ decay }}, candles_back) end)
            as ema_{{ w }}
        {%- endfor %}
    from weighted
    group by exchange, product_id, candle_start
)

select
    s.exchange,
    s.product_id,
    s.candle_start,
    s.close
    {%- for w in windows %},
    s.sma_{{ w }},
    cast(case when s.n >= {{ w }} then e.ema_{{ w }} end as double) as ema_{{ w }}
    {%- endfor %},
    case
        when s.sma_{{ windows[0] }} is null or s.sma_{{ windows[-1] }} is null then null
        when s.sma_{{ windows[0] }} > s.sma_{{ windows[-1] }} then 'up'
        when s.sma_{{ windows[0] }} < s.sma_{{ windows[-1] }} then 'down'
        else 'flat'
    end as trend,
    s.max_ingest_time
from simple as s
inner join targets as t
    on s.exchange = t.exchange and s.product_id = t.product_id and s.n = t.n
inner join exponential as e
    on s.exchange = e.exchange and s.product_id = e.product_id and s.candle_start = e.candle_start
