{#- Retention periods in the business timezone: day, week (starting on var('week_start'), default
    monday) and calendar month. var('period_grains') lists the grains the retention, cohort and
    activity-lifecycle marts publish side by side (period_grain in their keys); var('period_grain')
    is the one grain of the customer-level and business-lifecycle marts (fct_customer_periods,
    fct_customer_lifecycle, churn drivers, churn risk) and must be among them. All take and return
    dates. -#}

{% macro period_grain() -%}
    {%- set grain = var('period_grain', 'month') | lower -%}
    {%- if grain not in ['month', 'week', 'day'] -%}
        {{ exceptions.raise_compiler_error("var('period_grain') must be month, week or day, not " ~ grain) }}
    {%- endif -%}
    {{ return(grain) }}
{%- endmacro %}

{#- The published grains, finest first (var('period_grains'); default: all three). -#}
{% macro period_grains() -%}
    {%- set listed = var('period_grains', ['day', 'week', 'month']) -%}
    {%- if listed is string -%}{%- set listed = [listed] -%}{%- endif -%}
    {%- set grains = [] -%}
    {%- for g in listed -%}
        {%- if (g | lower) not in ['month', 'week', 'day'] -%}
            {{ exceptions.raise_compiler_error("var('period_grains') may list day, week and month, not " ~ g) }}
        {%- endif -%}
    {%- endfor -%}
    {%- for g in ['day', 'week', 'month'] -%}
        {%- if g in (listed | map('lower') | list) -%}{%- do grains.append(g) -%}{%- endif -%}
    {%- endfor -%}
    {%- if liucun.period_grain() not in grains -%}
        {{ exceptions.raise_compiler_error("var('period_grains') " ~ grains ~ " must include var('period_grain') ("
            ~ liucun.period_grain() ~ "): the customer-level marts are built at that grain") }}
    {%- endif -%}
    {{ return(grains) }}
{%- endmacro %}

{#- A filter on a relation's period_grain column: the rows of var('period_grain'). -#}
{% macro at_period_grain(relation=none) -%}
    {{ relation ~ '.' if relation else '' }}period_grain = '{{ liucun.period_grain() }}'
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

{#- The start of the period holding a (business-local) date; grain: var('period_grain') unless given. -#}
{% macro period_start(date_expr, grain=none) -%}
    {%- set grain = grain or liucun.period_grain() -%}
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

{#- The period start n periods after (n < 0: before) a period start; grain: var('period_grain')
    unless given. -#}
{% macro period_add(n, period_start_expr, grain=none) -%}
    cast({{ dbt.dateadd(grain or liucun.period_grain(), n, period_start_expr) }} as date)
{%- endmacro %}

{#- The dates from first_expr to last_expr (inclusive), as rows of column `calendar_day`, without a recursive
    CTE (Spark stops recursing at 100 levels by default; a day spine has hundreds): the integers
    0 .. 10^digits - 1 from a cross join of digit rows, kept up to the span. 10^5 days: 273 years. -#}
{% macro date_range(first_expr, last_expr, digits=5) -%}
    select cast({{ dbt.dateadd('day', 'numbers.n', 'bounds.first_day') }} as date) as calendar_day
    from (select cast({{ first_expr }} as date) as first_day, cast({{ last_expr }} as date) as last_day) as bounds
    inner join (
        select
            {%- for i in range(digits) %}
            d{{ i }}.d * {{ 10 ** i }}{{ ' +' if not loop.last else ' as n' }}
            {%- endfor %}
        from {% for i in range(digits) -%}
            (select 0 as d union all select 1 union all select 2 union all select 3 union all select 4
             union all select 5 union all select 6 union all select 7 union all select 8 union all select 9) as d{{ i }}
            {{- ',' if not loop.last }}
        {% endfor %}
    ) as numbers
        on numbers.n <= {{ dbt.datediff('bounds.first_day', 'bounds.last_day', 'day') }}
{%- endmacro %}

{#- Each active period of a customer ("a run" of the customer-period spine: this active period and
    the inactive ones up to the next active period), from `activity` (int_customer_activity_periods
    rows) and `periods` (every int_periods row, complete or not), per grain: the period's index, the
    customer's first period, the active periods just before and after, and the previous active
    period's revenue and last activity date. Windows run over the sparse activity rows only; a reader
    joins the runs with the periods it needs (of the same period_grain) instead of windowing over the
    dense spine. -#}
{% macro customer_activity_runs(activity, periods) -%}
    {%- set customer_grain = activity ~ '.customer_id, ' ~ activity ~ '.period_grain' %}
    select
        {{ activity }}.customer_id,
        {{ activity }}.period_grain,
        {{ activity }}.orders,
        {{ activity }}.revenue,
        {{ activity }}.events,
        {{ activity }}.last_activity_date,
        {{ periods }}.period_index as active_period_index,
        min({{ activity }}.period_start) over (partition by {{ customer_grain }}) as first_period_start,
        min({{ periods }}.period_index) over (partition by {{ customer_grain }}) as first_period_index,
        lag({{ periods }}.period_index) over (
            partition by {{ customer_grain }} order by {{ periods }}.period_index
        ) as previous_active_period_index,
        lag({{ activity }}.revenue) over (
            partition by {{ customer_grain }} order by {{ periods }}.period_index
        ) as previous_active_revenue,
        lag({{ activity }}.last_activity_date) over (
            partition by {{ customer_grain }} order by {{ periods }}.period_index
        ) as previous_last_activity_date,
        lead({{ periods }}.period_index) over (
            partition by {{ customer_grain }} order by {{ periods }}.period_index
        ) as next_active_period_index
    from {{ activity }}
    inner join {{ periods }}
        on {{ activity }}.period_grain = {{ periods }}.period_grain
        and {{ activity }}.period_start = {{ periods }}.period_start
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
    {{ left }}.period_grain = {{ right }}.period_grain
    and {{ left }}.cohort_type = {{ right }}.cohort_type
    and {{ left }}.cohort_period_start = {{ right }}.cohort_period_start
    and {{ left }}.segment_type = {{ right }}.segment_type
    and {{ left }}.segment_value = {{ right }}.segment_value
    {%- if period_number %}
    and {{ left }}.period_number = {{ right }}.period_number
    {%- endif %}
{%- endmacro %}
