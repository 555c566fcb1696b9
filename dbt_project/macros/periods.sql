{#- Retention periods: var('period_grain') (month | week | day) in the business timezone; weeks
    start on var('week_start') (default monday). All take and return dates. -#}

{% macro period_grain() -%}
    {%- set grain = var('period_grain', 'month') | lower -%}
    {%- if grain not in ['month', 'week', 'day'] -%}
        {{ exceptions.raise_compiler_error("var('period_grain') must be month, week or day, not " ~ grain) }}
    {%- endif -%}
    {{ return(grain) }}
{%- endmacro %}

{#- Days from Monday to the configured first day of the week. -#}
{% macro week_start_offset() -%}
    {%- set days = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] -%}
    {%- set start = var('week_start', 'monday') | lower -%}
    {%- if start not in days -%}
        {{ exceptions.raise_compiler_error("var('week_start') must be a day name, not " ~ start) }}
    {%- endif -%}
    {{ return(days.index(start)) }}
{%- endmacro %}

{#- The start of the period holding a (business-local) date. -#}
{% macro period_start(date_expr) -%}
    {%- set grain = liucun.period_grain() -%}
    {%- if grain == 'day' -%}
        cast({{ date_expr }} as date)
    {%- elif grain == 'month' -%}
        cast({{ dbt.date_trunc('month', 'cast(' ~ date_expr ~ ' as date)') }} as date)
    {%- else -%}
        {%- set offset = liucun.week_start_offset() -%}
        {%- if offset == 0 -%}
            cast({{ dbt.date_trunc('week', 'cast(' ~ date_expr ~ ' as date)') }} as date)
        {%- else -%}
            {%- set shifted = 'cast(' ~ dbt.dateadd('day', -offset, 'cast(' ~ date_expr ~ ' as date)') ~ ' as date)' -%}
            cast({{ dbt.dateadd('day', offset, 'cast(' ~ dbt.date_trunc('week', shifted) ~ ' as date)') }} as date)
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The period start n periods after (n < 0: before) a period start. -#}
{% macro period_add(n, period_start_expr) -%}
    cast({{ dbt.dateadd(liucun.period_grain(), n, period_start_expr) }} as date)
{%- endmacro %}
