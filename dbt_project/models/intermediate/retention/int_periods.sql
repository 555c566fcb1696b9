-- One row per period (var('period_grain'): month, week or day, business timezone) from the first
-- qualifying activity to the period holding the as-of date, with no gaps. A period is complete
-- when the as-of date is its last day or later. period_index numbers the periods from 0.
with recursive bounds as (

    select
        min(period_start) as first_period,
        {{ liucun.period_start(liucun.as_of_date()) }} as last_period
    from {{ ref('int_customer_activity_periods') }}

),

spine (period_start, last_period) as (

    select first_period, last_period from bounds where first_period is not null
    union all
    select {{ liucun.period_add(1, 'period_start') }}, last_period
    from spine
    where period_start < last_period

),

final as (

    select
        '{{ liucun.period_grain() }}' as period_grain,
        period_start,
        {{ liucun.period_add(1, 'period_start') }} as period_end,
        cast(row_number() over (order by period_start) - 1 as {{ dbt.type_bigint() }}) as period_index,
        {{ liucun.period_add(1, 'period_start') }}
            <= cast({{ dbt.dateadd('day', 1, liucun.as_of_date()) }} as date) as is_complete
    from spine

)

select * from final
