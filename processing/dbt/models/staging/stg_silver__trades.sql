-- silver.trades, 1:1, with the names and types the marts use
select
    exchange,
    product_id,
    trade_id,
    cast(price as decimal(38, 18)) as price,
    cast(size as decimal(38, 18)) as size,
    side as taker_side,
    event_time,
    receive_time,
    ingest_time,
    ingest_latency_ms,
    sequence,
    source,
    kafka_timestamp
from {{ silver_source('trades') }}
