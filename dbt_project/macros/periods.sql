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

{#- Each active period of a customer ("a run" of the customer-period spine: this active period and
    the inactive ones up to the next active period), from `activity` (int_customer_activity_periods
    rows) and `periods` (every int_periods row, complete or not): the period's index, the customer's
    first period, the active periods just before and after, and the previous active period's revenue
    and last activity date. Windows run over the sparse activity rows only; a reader joins the runs
    with the periods it needs instead of windowing over the dense spine. -#}
{% macro customer_activity_runs(activity, periods) -%}
    select
        {{ activity }}.customer_id,
        {{ activity }}.orders,
        {{ activity }}.revenue,
        {{ activity }}.events,
        {{ activity }}.last_activity_date,
        {{ periods }}.period_index as active_period_index,
        min({{ activity }}.period_start) over (partition by {{ activity }}.customer_id) as first_period_start,
        min({{ periods }}.period_index) over (partition by {{ activity }}.customer_id) as first_period_index,
        lag({{ periods }}.period_index) over (
            partition by {{ activity }}.customer_id order by {{ periods }}.period_index
        ) as previous_active_period_index,
        lag({{ activity }}.revenue) over (
            partition by {{ activity }}.customer_id order by {{ periods }}.period_index
        ) as previous_active_revenue,
        lag({{ activity }}.last_activity_date) over (
            partition by {{ activity }}.customer_id order by {{ periods }}.period_index
        ) as previous_last_activity_date,
        lead({{ periods }}.period_index) over (
            partition by {{ activity }}.customer_id order by {{ periods }}.period_index
        ) as next_active_period_index
    from {{ activity }}
    inner join {{ periods }}
        on {{ activity }}.period_start = {{ periods }}.period_start
{%- endmacro %}

{#- Whether a spine row (a period of a run from customer_activity_runs, joined as `periods`) had
    activity in the period before it: its own run's active period, or the previous run's. -#}
{% macro was_active_previous_period(runs, periods) -%}
    case
        when {{ periods }}.period_index = {{ runs }}.active_period_index
            then coalesce({{ runs }}.previous_active_period_index = {{ runs }}.active_period_index - 1, false)
        else {{ periods }}.period_index = {{ runs }}.active_period_index + 1
    end
{%- endmacro %}

{#- The date before a date (a period's last day: the day before its period_end). -#}
{% macro day_before(date_expr) -%}
    cast({{ dbt.dateadd('day', -1, date_expr) }} as date)
{%- endmacro %}

{#- Join condition: two relations' rows are of the same cohort (rpt_cohort_retention's key without
    the period), and of the same period number too when `period_number` is true. -#}
{% macro same_cohort(left, right, period_number=false) -%}
    {{ left }}.cohort_type = {{ right }}.cohort_type
    and {{ left }}.cohort_period_start = {{ right }}.cohort_period_start
    and {{ left }}.segment_type = {{ right }}.segment_type
    and {{ left }}.segment_value = {{ right }}.segment_value
    {%- if period_number %}
    and {{ left }}.period_number = {{ right }}.period_number
    {%- endif %}
{%- endmacro %}
