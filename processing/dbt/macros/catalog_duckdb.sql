{#- `dbt docs generate` on DuckDB: DuckDB's Iceberg catalog reports a table's columns only once the
    table has been read in the session (before that, one column "__" of type UNKNOWN), so each
    relation that exists is read once (no rows) before dbt-duckdb's own catalog query runs. -#}
{% macro duckdb__get_catalog_relations(information_schema, relations) -%}
  {%- for relation in relations -%}
    {%- set found = adapter.get_relation(relation.database, relation.schema, relation.identifier) -%}
    {%- if found is not none -%}
      {%- do run_query("select * from " ~ found ~ " limit 0") -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(dbt.duckdb__get_catalog_relations(information_schema, relations)) }}
{%- endmacro %}
