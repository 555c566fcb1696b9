-- One row per customer per complete period from the period of their first activity to the last
-- complete period, with no gaps: activity, orders and revenue of the period, days since the last
-- activity at the period's last day, and the growth-accounting stage.
-- A daily build recomputes only the customers whose identity or records changed, until a period
-- completes (macros/incremental.sql).
-- depends_on: {{ ref('int_identifiers_clustered') }}
{{ liucun.customer_absorbing_config(periods=true) }}
with periods as (

    select * from {{ ref('int_periods') }}
    where is_complete

),

activity as (

    select * from {{ ref('int_customer_activity_periods') }}
    {{- liucun.only_changed_customers() }}

),

first_periods as (

    select customer_id, min(period_start) as first_period_start
    from activity
    group by customer_id

),

spine as (

    select
        first_periods.customer_id,
        first_periods.first_period_start,
        periods.period_grain,
        periods.period_start,
        periods.period_end,
        periods.period_index
    from first_periods
    inner join periods
        on periods.period_start >= first_periods.first_period_start

),

joined as (

    select
        spine.*,
        activity.customer_id is not null as is_active,
        coalesce(activity.orders, 0) as orders,
        coalesce(activity.revenue, 0) as revenue,
        coalesce(activity.events, 0) as events,
        max(activity.last_activity_date) over (
            partition by spine.customer_id order by spine.period_start
            rows between unbounded preceding and current row
        ) as last_activity_date
    from spine
    left join activity
        on spine.customer_id = activity.customer_id
        and spine.period_start = activity.period_start

),

flagged as (

    select
        *,
        period_start = first_period_start as is_new,
        coalesce(lag(is_active) over (partition by customer_id order by period_start), false)
            as was_active_previous_period,
        cast({{ dbt.dateadd('day', -1, 'period_end') }} as date) as period_last_day
    from joined

),

final as (

    select
        customer_id,
        period_grain,
        period_start,
        period_end,
        first_period_start,
        cast(period_index - min(period_index) over (partition by customer_id) as {{ dbt.type_bigint() }})
            as period_number,
        is_active,
        is_new,
        was_active_previous_period,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(events as {{ dbt.type_bigint() }}) as events,
        last_activity_date,
        cast({{ dbt.datediff('last_activity_date', 'period_last_day', 'day') }} as {{ dbt.type_bigint() }})
            as days_since_last_activity,
        case
            when is_new then 'new'
            when is_active and was_active_previous_period then 'returning'
            when is_active then 'resurrecting'
            when was_active_previous_period then 'dormant'
            else 'inactive'
        end as lifecycle_stage
    from flagged

)

select * from final
