{#
  Exact money arithmetic for gold. Prices, sizes, volumes and VWAP are decimal(38,18) in both
  engines; floats appear only where a model needs a logarithm.
#}

{# price x size at scale 18. Both factors are taken at scale 9 first, because the exact product of
   two scale-18 decimals needs scale 36 and would leave 2 integer digits in a decimal(38); exchange
   prices and sizes carry at most 9 fractional digits (Coinbase: sizes 1e-8, quote increments
   >= 1e-8), so nothing is lost for real trades. #}
{% macro trade_notional(price, size) -%}
    {{ return(adapter.dispatch('trade_notional', 'lakehouse_gold')(price, size)) }}
{%- endmacro %}

{% macro default__trade_notional(price, size) -%}
    (cast({{ price }} as decimal(38, 9)) * cast({{ size }} as decimal(38, 9)))
{%- endmacro %}

{# The same value from a function the dbt plugin registers (processing/dbt_lake_plugin.py): DuckDB's
   own decimal(38,18) -> decimal(38,9) cast is exact but so slow (~3 us a value) that it dominated
   the whole gold build. #}
{% macro duckdb__trade_notional(price, size) -%}
    lakehouse_trade_notional({{ price }}, {{ size }})
{%- endmacro %}

{# numerator / denominator as decimal(38,18), rounded half away from zero (Trino's decimal division
   rule); null when the denominator is 0. #}
{% macro divide_money(numerator, denominator) -%}
    {{ return(adapter.dispatch('divide_money', 'lakehouse_gold')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__divide_money(numerator, denominator) -%}
    (cast({{ numerator }} as decimal(38, 18)) / nullif(cast({{ denominator }} as decimal(38, 18)), 0))
{%- endmacro %}

{# DuckDB turns decimal division into DOUBLE (~16 significant digits), so VWAP would not be exact.
   Instead: long division on the unscaled HUGEINT values (both operands at scale 18, so their ratio
   is the ratio of the decimals), 18 fractional digits in three steps of 10^6 plus one rounding
   digit. Exact while |denominator| < 1.7e14 (the remainder x 10^6 must fit a 128-bit integer). #}
{% macro duckdb__divide_money(numerator, denominator) -%}
    {%- set n -%} abs({{ _unscaled_money(numerator) }}) {%- endset -%}
    {%- set d -%} nullif(abs({{ _unscaled_money(denominator) }}), 0) {%- endset -%}
    {%- set r0 -%} ({{ n }} % {{ d }}) {%- endset -%}
    {%- set r1 -%} (({{ r0 }} * 1000000) % {{ d }}) {%- endset -%}
    {%- set r2 -%} (({{ r1 }} * 1000000) % {{ d }}) {%- endset -%}
    {%- set r3 -%} (({{ r2 }} * 1000000) % {{ d }}) {%- endset -%}
    {%- set fraction -%}
        (({{ r0 }} * 1000000) // {{ d }}) * cast(1000000000000 as hugeint)
        + (({{ r1 }} * 1000000) // {{ d }}) * 1000000
        + (({{ r2 }} * 1000000) // {{ d }})
        + case when ({{ r3 }} * 10) // {{ d }} >= 5 then 1 else 0 end
    {%- endset -%}
    (sign({{ _unscaled_money(numerator) }}) * (
        cast({{ n }} // {{ d }} as decimal(38, 18))
        + cast({{ fraction }} as decimal(38, 0)) * cast('0.000000000000000001' as decimal(38, 18))
    ))
{%- endmacro %}

{# The integer behind a decimal(38,18): DuckDB prints every fractional digit, so dropping the point
   gives the unscaled value exactly. #}
{% macro _unscaled_money(expr) -%}
    cast(replace(cast(cast({{ expr }} as decimal(38, 18)) as varchar), '.', '') as hugeint)
{%- endmacro %}

{# exact quantile of an integer column: DuckDB computes it exactly; Trino only approximately #}
{% macro percentile(expr, fraction) -%}
    {{ return(adapter.dispatch('percentile', 'lakehouse_gold')(expr, fraction)) }}
{%- endmacro %}

{% macro default__percentile(expr, fraction) -%}
    approx_percentile({{ expr }}, {{ fraction }})
{%- endmacro %}

{% macro duckdb__percentile(expr, fraction) -%}
    quantile_disc({{ expr }}, {{ fraction }})
{%- endmacro %}
