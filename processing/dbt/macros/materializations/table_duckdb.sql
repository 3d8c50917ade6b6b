{#
  `table` on DuckDB, replacing dbt-duckdb's for this project. dbt-duckdb builds `<model>__dbt_tmp`
  and renames it over the old table; DuckDB's Iceberg catalog refuses that ("This table was
  modified already, can't be renamed!": a table created in a transaction cannot be renamed in it),
  and dropping then re-creating a table in one transaction is not supported either. So:
  - first build: CREATE TABLE ... AS;
  - rebuild with the same columns: DELETE all rows + INSERT in ONE transaction, which commits as
    one Iceberg snapshot, so readers see the old table or the new one, never an empty one;
  - columns changed: DROP, then CREATE in a second transaction (briefly absent; only on a schema
    change).
  Trino keeps its adapter's own `table` materialization.
#}
{% materialization table, adapter="duckdb" %}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='table') -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- set same_columns = false -%}
  {%- if existing_relation is not none -%}
    {%- set new_columns = get_column_schema_from_query(sql) -%}
    {%- set old_columns = adapter.get_columns_in_relation(existing_relation) -%}
    {%- set new_shape = new_columns | map(attribute='name') | map('lower') | list
        ~ new_columns | map(attribute='dtype') | map('lower') | list -%}
    {%- set old_shape = old_columns | map(attribute='name') | map('lower') | list
        ~ old_columns | map(attribute='dtype') | map('lower') | list -%}
    {%- set same_columns = new_shape == old_shape -%}
    {%- if not same_columns -%}
      {{ log("columns of " ~ target_relation ~ " changed: dropping and re-creating it", info=true) }}
      {% do adapter.drop_relation(existing_relation) %}
      {{ adapter.commit() }}
    {%- endif -%}
  {%- endif -%}

  {% call statement('main') -%}
    {%- if same_columns %}
      delete from {{ target_relation }};
      insert into {{ target_relation }} ({{ get_columns_in_query(sql) | join(', ') }})
      {{ sql }};
    {%- else %}
      {{ create_table_as(False, target_relation, sql) }}
    {%- endif %}
  {%- endcall %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
