-- silver.trades_rejected, 1:1
select
    exchange,
    product_id,
    trade_id,
    event_time,
    ingest_time,
    source,
    reason
from {{ silver_source('trades_rejected') }}
