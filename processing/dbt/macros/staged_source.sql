{#
  A silver source as the hourly run's audit sees it (write-audit-publish, processing/wap.py): the
  snapshot named in var('silver_snapshots') ({"trades": id, "trades_rejected": id}, the heads of the
  hour's audit branches), else the table as it is now (main). dbt's source() cannot carry a time
  travel clause, so the models call this instead; the subquery lets callers alias it.
#}
{% macro silver_source(name) -%}
    {%- set snapshot_id = var('silver_snapshots', {}).get(name) -%}
    {%- if snapshot_id is none -%}
        {{ source('silver', name) }}
    {%- else -%}
        (select * from {{ source('silver', name) }} {{ adapter.dispatch('at_snapshot', 'lakehouse_gold')(snapshot_id | int) }})
    {%- endif -%}
{%- endmacro %}

{% macro default__at_snapshot(snapshot_id) -%}
    for version as of {{ snapshot_id }}
{%- endmacro %}

{% macro duckdb__at_snapshot(snapshot_id) -%}
    at (version => {{ snapshot_id }})
{%- endmacro %}
