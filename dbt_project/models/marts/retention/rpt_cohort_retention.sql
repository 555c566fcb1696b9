-- One row per acquisition cohort (the period of a customer's first qualifying purchase), segment
-- ('all', or the cohort split by acquisition channel) and period_number (0 = the cohort's own
-- period) up to the period holding the as-of date; that last period is flagged incomplete.
with periods as (

    select * from {{ ref('int_periods') }}

),

activity as (

    select * from {{ ref('int_customer_activity_periods') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

cohorts as (

    select customer_id, min(period_start) as cohort_period_start
    from activity
    where orders > 0
    group by customer_id

),

cohort_members as (

    select customer_id, cohort_period_start, 'all' as segment_type, 'all' as segment_value
    from cohorts
    union all
    select
        cohorts.customer_id,
        cohorts.cohort_period_start,
        'acquisition_channel',
        coalesce(customers.acquisition_channel, 'unknown')
    from cohorts
    left join customers on cohorts.customer_id = customers.customer_id

),

cohort_sizes as (

    select cohort_period_start, segment_type, segment_value, count(*) as cohort_size
    from cohort_members
    group by cohort_period_start, segment_type, segment_value

),

grid as (

    select
        cohort_sizes.*,
        periods.period_grain,
        periods.period_start,
        periods.is_complete,
        periods.period_index - cohort_periods.period_index as period_number
    from cohort_sizes
    inner join periods as cohort_periods
        on cohort_sizes.cohort_period_start = cohort_periods.period_start
    inner join periods
        on periods.period_start >= cohort_sizes.cohort_period_start

),

cohort_activity as (

    select
        cohort_members.cohort_period_start,
        cohort_members.segment_type,
        cohort_members.segment_value,
        activity.period_start,
        count(*) as active_customers,
        sum(activity.orders) as orders,
        sum(activity.revenue) as revenue
    from cohort_members
    inner join activity
        on cohort_members.customer_id = activity.customer_id
        and activity.period_start >= cohort_members.cohort_period_start
    group by
        cohort_members.cohort_period_start, cohort_members.segment_type,
        cohort_members.segment_value, activity.period_start

),

joined as (

    select
        grid.period_grain,
        grid.cohort_period_start,
        grid.segment_type,
        grid.segment_value,
        grid.period_number,
        grid.period_start,
        grid.is_complete,
        grid.cohort_size,
        coalesce(cohort_activity.active_customers, 0) as active_customers,
        coalesce(cohort_activity.orders, 0) as orders,
        coalesce(cohort_activity.revenue, 0) as revenue
    from grid
    left join cohort_activity
        on grid.cohort_period_start = cohort_activity.cohort_period_start
        and grid.segment_type = cohort_activity.segment_type
        and grid.segment_value = cohort_activity.segment_value
        and grid.period_start = cohort_activity.period_start

),

final as (

    select
        period_grain,
        cohort_period_start,
        segment_type,
        segment_value,
        cast(period_number as {{ dbt.type_bigint() }}) as period_number,
        period_start,
        is_complete,
        cast(cohort_size as {{ dbt.type_bigint() }}) as cohort_size,
        cast(active_customers as {{ dbt.type_bigint() }}) as active_customers,
        {{ liucun.ratio('active_customers', 'cohort_size') }} as retention_rate,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(revenue as decimal(38, 2)) as revenue,
        cast(sum(revenue) over (
            partition by cohort_period_start, segment_type, segment_value
            order by period_number rows between unbounded preceding and current row
        ) as decimal(38, 2)) as cumulative_revenue,
        {{ liucun.ratio(
            'sum(revenue) over (partition by cohort_period_start, segment_type, segment_value '
            ~ 'order by period_number rows between unbounded preceding and current row)',
            'cohort_size') }} as cumulative_revenue_per_customer
    from joined

)

select * from final
