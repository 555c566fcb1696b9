-- One row per period start and churn driver (doc 'churn_definitions'): the 2x2 table of the
-- customers at risk at the period start. At risk: the last qualifying purchase before the period
-- start lies within var('churn_driver_lookback_days') before it but at least
-- var('churn_driver_exposure_days') before it, and no churn (fct_churn_events) between that last
-- purchase and the period start. Exposed: a touchpoint of the driver (int_churn_touchpoints) within
-- var('churn_driver_exposure_days') from that last purchase (a window of fixed length, complete
-- before the period start). Churned: a churn event dated within var('churn_driver_horizon_days')
-- from the period start. Only periods whose lookback starts on or
-- after the first period of data and whose horizon ends by the as-of date are counted, and only
-- drivers with at least one exposed customer in the period get a row.
{%- set lookback = var('churn_driver_lookback_days') %}
{%- set horizon = var('churn_driver_horizon_days') %}
{%- set exposure = var('churn_driver_exposure_days') %}
with periods as (

    select period_grain, period_start
    from {{ ref('int_periods') }}
    where {{ liucun.at_period_grain() }}
      and cast({{ dbt.dateadd('day', -lookback, 'period_start') }} as date)
            >= (select min(period_start) from {{ ref('int_periods') }} where {{ liucun.at_period_grain() }})
      and cast({{ dbt.dateadd('day', horizon, 'period_start') }} as date)
            <= cast({{ dbt.dateadd('day', 1, liucun.as_of_date()) }} as date)

),

purchases as (

    select customer_id, order_date
    from {{ ref('int_orders_attributed') }}
    where customer_id is not null
      and net_amount > {{ var('min_qualifying_amount') }}

),

churns as (

    select customer_id, churn_date from {{ ref('fct_churn_events') }}

),

recent as (

    select
        purchases.customer_id,
        periods.period_grain,
        periods.period_start,
        max(purchases.order_date) as last_purchase_date
    from periods
    inner join purchases
        on purchases.order_date < periods.period_start
        and purchases.order_date >= cast({{ dbt.dateadd('day', -lookback, 'periods.period_start') }} as date)
    group by purchases.customer_id, periods.period_grain, periods.period_start

),

at_risk as (

    select
        recent.customer_id,
        recent.period_grain,
        recent.period_start,
        recent.last_purchase_date,
        max(case
            when churns.churn_date >= recent.period_start
             and churns.churn_date < cast({{ dbt.dateadd('day', horizon, 'recent.period_start') }} as date)
            then 1 else 0 end) as is_churned,
        max(case
            when churns.churn_date >= recent.last_purchase_date and churns.churn_date < recent.period_start
            then 1 else 0 end) as churned_before_start
    from recent
    left join churns on recent.customer_id = churns.customer_id
    group by recent.customer_id, recent.period_grain, recent.period_start, recent.last_purchase_date

),

population as (

    select customer_id, period_grain, period_start, last_purchase_date, is_churned
    from at_risk
    where churned_before_start = 0
      and last_purchase_date < cast({{ dbt.dateadd('day', -exposure, 'period_start') }} as date)

),

totals as (

    select
        period_grain,
        period_start,
        count(*) as customers,
        sum(is_churned) as churned
    from population
    group by period_grain, period_start

),

exposures as (

    select distinct
        population.customer_id,
        population.period_grain,
        population.period_start,
        population.is_churned,
        touchpoints.driver
    from population
    inner join {{ ref('int_churn_touchpoints') }} as touchpoints
        on population.customer_id = touchpoints.customer_id
        and touchpoints.touchpoint_date >= population.last_purchase_date
        and touchpoints.touchpoint_date < cast({{ dbt.dateadd('day', exposure, 'population.last_purchase_date') }} as date)

),

exposed as (

    select
        period_grain,
        period_start,
        driver,
        count(*) as exposed,
        sum(is_churned) as exposed_churned
    from exposures
    group by period_grain, period_start, driver

),

final as (

    select
        exposed.period_grain,
        exposed.period_start,
        cast(exposed.driver as {{ dbt.type_string() }}) as driver,
        cast(exposed.exposed as {{ dbt.type_bigint() }}) as exposed,
        cast(exposed.exposed_churned as {{ dbt.type_bigint() }}) as exposed_churned,
        cast(totals.customers - exposed.exposed as {{ dbt.type_bigint() }}) as unexposed,
        cast(totals.churned - exposed.exposed_churned as {{ dbt.type_bigint() }}) as unexposed_churned
    from exposed
    inner join totals
        on exposed.period_grain = totals.period_grain
        and exposed.period_start = totals.period_start

)

select * from final
