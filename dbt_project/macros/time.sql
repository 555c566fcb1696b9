{#- Timestamps are stored as naive UTC (`*_at`). These macros give business-local time and dates. -#}

{% macro to_business_time(utc_ts) -%}
    {{ return(adapter.dispatch('to_business_time', 'liucun')(utc_ts)) }}
{%- endmacro %}

{% macro default__to_business_time(utc_ts) -%}
    (({{ utc_ts }}) at time zone 'UTC') at time zone '{{ var("business_timezone") }}'
{%- endmacro %}

{% macro duckdb__to_business_time(utc_ts) -%}
    timezone('{{ var("business_timezone") }}', timezone('UTC', {{ utc_ts }}))
{%- endmacro %}

{% macro to_business_date(utc_ts) -%}
    cast({{ liucun.to_business_time(utc_ts) }} as date)
{%- endmacro %}

{#- The as-of date of the run: var('as_of_date'), else the environment variable LIUCUN_AS_OF_DATE
    (what `liucun run` sets), else today. The environment variable is read only when models run,
    never while dbt parses: a new date every day then keeps dbt's partial parse valid (a changed
    --vars value makes dbt parse the whole project again). -#}
{% macro as_of_date() -%}
    {%- set as_of = var('as_of_date', none) or (env_var('LIUCUN_AS_OF_DATE', '') if execute else none) -%}
    {%- if as_of -%}cast('{{ as_of }}' as date){%- else -%}current_date{%- endif -%}
{%- endmacro %}

{#- Safe ratio: null when the denominator is 0. -#}
{% macro ratio(numerator, denominator) -%}
    cast({{ numerator }} as double precision) / nullif({{ denominator }}, 0)
{%- endmacro %}
