-- One row per customer per complete period (var('period_grain')) from the period of their first activity to the last
-- complete period, with no gaps: activity, orders and revenue of the period, days since the last
-- activity at the period's last day, and the growth-accounting stage.
-- A daily build recomputes only the customers whose identity or records changed, until a period
-- completes (macros/incremental.sql).
-- depends_on: {{ ref('int_identifiers_clustered') }}
{{ liucun.customer_absorbing_config(periods=true) }}
with all_periods as (

    select * from {{ ref('int_periods') }}
    where {{ liucun.at_period_grain() }}

),

periods as (

    select * from all_periods
    where is_complete

),

activity as (

    select * from {{ ref('int_customer_activity_periods') }}
    where {{ liucun.at_period_grain() }}
    {{- liucun.only_changed_customers(keyword='and') }}

),

-- each active period with the customer's first period and the active periods around it: a "run" of
-- the spine, this active period and the inactive ones up to the next (macros/periods.sql; no window
-- over the whole spine: every column of a spine row comes from its run)
runs as (

    {{ liucun.customer_activity_runs('activity', 'all_periods') }}

),

spine as (

    select
        runs.*,
        periods.period_start,
        periods.period_end,
        periods.period_index,
        periods.period_index = runs.active_period_index as is_active
    from runs
    inner join periods
        on periods.period_grain = runs.period_grain
        and periods.period_index >= runs.active_period_index
        and (runs.next_active_period_index is null or periods.period_index < runs.next_active_period_index)

),

flagged as (

    select
        *,
        period_index = first_period_index as is_new,
        {{ liucun.was_active_previous_period('spine', 'spine') }} as was_active_previous_period,
        {{ liucun.day_before('period_end') }} as period_last_day
    from spine

),

final as (

    select
        customer_id,
        period_grain,
        period_start,
        period_end,
        first_period_start,
        cast(period_index - first_period_index as {{ dbt.type_bigint() }}) as period_number,
        is_active,
        is_new,
        was_active_previous_period,
        cast(case when is_active then orders else 0 end as {{ dbt.type_bigint() }}) as orders,
        cast(case when is_active then revenue else 0 end as decimal(18, 2)) as revenue,
        cast(case when is_active then events else 0 end as {{ dbt.type_bigint() }}) as events,
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
