-- silver.reference_prices, 1:1, with the names and types the marts use
select
    source,
    coin_id,
    vs_currency,
    product_id,
    cast(price as decimal(38, 18)) as price,
    event_time,
    receive_time,
    ingest_time
from {{ source('silver', 'reference_prices') }}
