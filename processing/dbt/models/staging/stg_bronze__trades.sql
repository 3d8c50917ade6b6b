-- bronze.trades, 1:1 (only what pipeline health needs; the raw frame stays in bronze)
select
    exchange,
    product_id,
    trade_id,
    event_time,
    receive_time,
    ingest_time,
    kafka_topic,
    kafka_partition,
    kafka_offset
from {{ source('bronze', 'trades') }}
