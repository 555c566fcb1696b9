{#- The groups the survival curves are drawn for besides 'all': var('survival_group_types'), each a
    column of int_customer_survival_times. value_tier is refused: it is lifetime net revenue, which
    a customer accumulates by surviving, so grouping by it would read survival into the groups. -#}
{% macro survival_group_types() -%}
    {%- set known = ['acquisition_cohort', 'acquisition_channel', 'first_order_channel', 'region'] -%}
    {%- set types = var('survival_group_types', known) -%}
    {%- for t in types -%}
        {%- if t == 'value_tier' -%}
            {{ exceptions.raise_compiler_error(
                "var('survival_group_types'): value_tier cannot group survival curves (it is lifetime revenue, "
                ~ "which grows the longer a customer survives); known: " ~ known | join(', ')) }}
        {%- elif t not in known -%}
            {{ exceptions.raise_compiler_error(
                "var('survival_group_types'): unknown group type " ~ t ~ "; known: " ~ known | join(', ')) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(types) }}
{%- endmacro %}

{#- The rows of int_customer_survival_times once per group: group_type, group_value, duration_days,
    churned (a union, one select per group type). -#}
{% macro survival_grouped(relation) -%}
    select 'all' as group_type, 'all' as group_value, duration_days, churned from {{ relation }}
    {%- for t in liucun.survival_group_types() %}
    union all
    select '{{ t }}', cast({{ t }} as {{ dbt.type_string() }}), duration_days, churned from {{ relation }}
    {%- endfor %}
{%- endmacro %}
