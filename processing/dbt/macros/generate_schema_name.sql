{# Gold lives in the schema named by the model (`gold`), not `<target schema>_gold`, so both
   stacks write the same <catalog>.gold.<model> tables. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
