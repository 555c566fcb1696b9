-- One row per published grain (var('period_grains'): day, week, month; business timezone) and
-- period, from the period of the first qualifying activity to the period holding the as-of date,
-- with no gaps. A period is complete when the as-of date is its last day or later. period_index
-- numbers each grain's periods from 0.
with bounds as (

    select
        min(first_activity_date) as first_day,
        {{ liucun.as_of_date() }} as last_day
    from {{ ref('int_customer_activity_periods') }}

),

days as (

    {{ liucun.date_range('(select first_day from bounds)', '(select last_day from bounds)') }}

),

grain_periods as (

    {%- for grain in liucun.period_grains() %}
    select distinct '{{ grain }}' as period_grain, {{ liucun.period_start('calendar_day', grain) }} as period_start
    from days
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

final as (

    select
        period_grain,
        period_start,
        case
            {%- for grain in liucun.period_grains() %}
            when period_grain = '{{ grain }}' then {{ liucun.period_add(1, 'period_start', grain) }}
            {%- endfor %}
        end as period_end,
        cast(row_number() over (partition by period_grain order by period_start) - 1 as {{ dbt.type_bigint() }})
            as period_index
    from grain_periods

)

select
    period_grain,
    period_start,
    period_end,
    period_index,
    period_end <= cast({{ dbt.dateadd('day', 1, liucun.as_of_date()) }} as date) as is_complete
from final
