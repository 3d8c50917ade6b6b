{#
  Late data for the incremental 1m models. A run re-aggregates, from all of silver, every
  (exchange, product_id, minute) that received a silver row ingested after
  "newest max_ingest_time already in this model - late_data_lookback_hours". Silver only adds rows
  (one per trade key), so a re-aggregated minute is complete; delete+insert on the model's key then
  replaces the old row. The lookback covers silver hours that commit out of order (a retried or
  backfilled hour); anything older needs `lakehouse gold --full-refresh`.
#}
{% macro touched_minutes(trades_relation) -%}
    select distinct exchange, product_id, {{ bucket_start('minute', 'event_time') }} as candle_start
    from {{ trades_relation }}
    -- an empty model (no max yet) takes everything; one predicate rather than an OR of two
    -- subqueries, which DuckDB evaluated as a slower plan
    where coalesce(ingest_time > (
        select {{ dbt.dateadd('hour', -1 * var('late_data_lookback_hours'), 'max(max_ingest_time)') }}
        from {{ this }}
    ), true)
{%- endmacro %}

{# silver trades of the minutes this run owns: all of them on a full build. `arrivals_relation` is
   where touched minutes are looked up: silver itself rather than its staging model, because a
   staging CTE referenced twice is materialized by DuckDB with every column of every row. #}
{% macro trades_in_scope(trades_relation, arrivals_relation) -%}
    {%- if incremental_run() -%}
    with touched as (
        {{ touched_minutes(arrivals_relation) }}
    )
    select t.*
    from {{ trades_relation }} as t
    inner join touched
        on t.exchange = touched.exchange
        and t.product_id = touched.product_id
        and {{ bucket_start('minute', 't.event_time') }} = touched.candle_start
    -- implied by the join; a plain bound on event_time lets the scan skip what is older
    where t.event_time >= (select min(candle_start) from touched)
    {%- else -%}
    select * from {{ trades_relation }}
    {%- endif -%}
{%- endmacro %}

{# is_incremental(), except in an offline compile (`dbt compile --no-introspect`, used to check the
   Trino target without a server), where asking whether the table exists would need a connection:
   there the full-build SQL is compiled. #}
{% macro incremental_run() -%}
    {%- if not flags.INTROSPECT -%}
        {{ return(false) }}
    {%- endif -%}
    {{ return(is_incremental()) }}
{%- endmacro %}
