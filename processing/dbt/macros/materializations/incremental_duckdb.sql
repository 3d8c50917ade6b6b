{#
  `incremental` on DuckDB: dbt-duckdb's own (reached as `dbt.materialization_incremental_duckdb`),
  except a full refresh of an existing table. dbt-duckdb rebuilds that one in a `<model>__dbt_tmp`
  table and swaps it in by renaming, which DuckDB's Iceberg catalog refuses (see table_duckdb.sql):
  `dbt build --full-refresh` failed on every incremental model with "Failed to commit Iceberg
  transaction: Table <model>__dbt_tmp does not exist". A full refresh rebuilds the whole table from
  its query, which is what this project's `table` materialization does in one Iceberg snapshot, so
  it is handed to that one.
#}
{% materialization incremental, adapter="duckdb", supported_languages=['sql'] %}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- if existing_relation is not none and should_full_refresh() -%}
    {%- set relations = materialization_table_duckdb() -%}
  {%- else -%}
    {%- set relations = dbt.materialization_incremental_duckdb() -%}
  {%- endif -%}
  {{ return(relations) }}
{% endmaterialization %}
