-- One row per month: S (active in the previous month), E (active this month), N (first-ever
-- activity this month) and retained (active in both), over all customers.
with periods as (

    select * from {{ ref('int_periods') }}

),

activity as (

    select customer_id, period_start from {{ ref('int_customer_activity_months') }}

),

previous_activity as (

    select
        customer_id,
        cast({{ dbt.dateadd('month', 1, 'period_start') }} as date) as period_start
    from activity

),

first_periods as (

    select customer_id, min(period_start) as period_start
    from activity
    group by customer_id

),

ends as (

    select period_start, count(*) as customers_end from activity group by period_start

),

starts as (

    select period_start, count(*) as customers_start from previous_activity group by period_start

),

news as (

    select period_start, count(*) as customers_new from first_periods group by period_start

),

retained as (

    select activity.period_start, count(*) as customers_retained
    from activity
    inner join previous_activity
        on activity.customer_id = previous_activity.customer_id
        and activity.period_start = previous_activity.period_start
    group by activity.period_start

),

final as (

    select
        periods.period_grain,
        periods.period_start,
        periods.period_end,
        periods.is_complete,
        coalesce(starts.customers_start, 0) as customers_start,
        coalesce(ends.customers_end, 0) as customers_end,
        coalesce(news.customers_new, 0) as customers_new,
        coalesce(retained.customers_retained, 0) as customers_retained
    from periods
    left join starts on periods.period_start = starts.period_start
    left join ends on periods.period_start = ends.period_start
    left join news on periods.period_start = news.period_start
    left join retained on periods.period_start = retained.period_start

)

select * from final
