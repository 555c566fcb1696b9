-- One row per calendar month (business timezone) from the first qualifying activity to the month
-- holding the as-of date, with no gaps. A month is complete when the as-of date is its last day
-- or later.
with recursive bounds as (

    select
        min(period_start) as first_period,
        cast({{ dbt.date_trunc('month', liucun.as_of_date()) }} as date) as last_period
    from {{ ref('int_customer_activity_months') }}

),

spine (period_start, last_period) as (

    select first_period, last_period from bounds where first_period is not null
    union all
    select cast({{ dbt.dateadd('month', 1, 'period_start') }} as date), last_period
    from spine
    where period_start < last_period

),

final as (

    select
        'month' as period_grain,
        period_start,
        cast({{ dbt.dateadd('month', 1, 'period_start') }} as date) as period_end,
        cast({{ dbt.dateadd('month', 1, 'period_start') }} as date)
            <= cast({{ dbt.dateadd('day', 1, liucun.as_of_date()) }} as date) as is_complete
    from spine

)

select * from final
