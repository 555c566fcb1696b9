-- One row per churn driver, pooled over periods (doc 'churn_definitions'): among the customers at
-- risk at a period start (int_churn_driver_period_counts; customer-periods are the units, so a
-- customer counts once per period start), the churn rate within var('churn_driver_horizon_days')
-- of those exposed to the driver (within var('churn_driver_exposure_days') from their last purchase) and of
-- the unexposed, the lift, and the odds ratio with +1 added to each cell (a, b, c, d) and its
-- interval exp(ln OR +- z * sqrt(1/a + 1/b + 1/c + 1/d)) on the +1 cells, z = var('churn_driver_ci_z').
-- Drivers with a cell below var('churn_driver_min_support') are not ranked; the others are ranked
-- by the odds ratio (effect size), ties by the interval's lower bound.
{%- set z = var('churn_driver_ci_z') %}
{#- ratios are published rounded to 9 decimals, so both engines give identical values -#}

{%- set min_support = var('churn_driver_min_support') %}
with counts as (

    select * from {{ ref('int_churn_driver_period_counts') }}

),

pooled as (

    select
        driver,
        count(*) as periods,
        min(period_start) as first_period_start,
        max(period_start) as last_period_start,
        sum(exposed) as exposed,
        sum(exposed_churned) as exposed_churned,
        sum(unexposed) as unexposed,
        sum(unexposed_churned) as unexposed_churned
    from counts
    group by driver

),

cells as (

    select
        *,
        cast(exposed_churned + 1 as {{ liucun.type_double() }}) as a,
        cast(exposed - exposed_churned + 1 as {{ liucun.type_double() }}) as b,
        cast(unexposed_churned + 1 as {{ liucun.type_double() }}) as c,
        cast(unexposed - unexposed_churned + 1 as {{ liucun.type_double() }}) as d
    from pooled

),

measured as (

    select
        *,
        {{ liucun.ratio('exposed_churned', 'exposed') }} as churn_rate_exposed,
        {{ liucun.ratio('unexposed_churned', 'unexposed') }} as churn_rate_unexposed,
        (a * d) / (b * c) as odds_ratio,
        sqrt(1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d) as log_odds_ratio_se,
        exposed_churned >= {{ min_support }}
            and exposed - exposed_churned >= {{ min_support }}
            and unexposed_churned >= {{ min_support }}
            and unexposed - unexposed_churned >= {{ min_support }} as is_ranked
    from cells

),

intervals as (

    select
        *,
        churn_rate_exposed / nullif(churn_rate_unexposed, 0) as lift,
        -- Katz log interval of the lift (risk ratio) on the raw counts; none when a group has no churn
        case when exposed_churned > 0 and unexposed_churned > 0 then sqrt(
            1.0 / exposed_churned - 1.0 / exposed + 1.0 / unexposed_churned - 1.0 / unexposed)
        end as log_lift_se,
        exp(ln(odds_ratio) - {{ z }} * log_odds_ratio_se) as odds_ratio_ci_lower,
        exp(ln(odds_ratio) + {{ z }} * log_odds_ratio_se) as odds_ratio_ci_upper
    from measured

),

lifted as (

    select
        *,
        -- no interval without churn in both groups (then the lift may be 0, whose log is undefined)
        case when log_lift_se is not null then exp(ln(lift) - {{ z }} * log_lift_se) end as lift_ci_lower,
        case when log_lift_se is not null then exp(ln(lift) + {{ z }} * log_lift_se) end as lift_ci_upper
    from intervals

),

ranked as (

    select
        *,
        case when is_ranked then row_number() over (
            partition by is_ranked order by odds_ratio desc, odds_ratio_ci_lower desc, driver
        ) end as driver_rank
    from lifted

),

final as (

    select
        cast(driver as {{ dbt.type_string() }}) as driver,
        cast(case
            when driver like 'ticket!_%' escape '!' then 'ticket'
            when driver in ('delivery_delay', 'return_refund') then 'order'
            when driver = 'payment_failure' then 'billing'
            when driver = 'app_error' then 'event'
            when driver = 'nps_detractor' then 'survey'
            when driver = 'low_satisfaction' then 'ticket_or_survey'
            else 'other'
        end as {{ dbt.type_string() }}) as driver_source,
        cast(periods as {{ dbt.type_bigint() }}) as periods,
        cast(first_period_start as date) as first_period_start,
        cast(last_period_start as date) as last_period_start,
        cast(exposed as {{ dbt.type_bigint() }}) as exposed,
        cast(exposed_churned as {{ dbt.type_bigint() }}) as exposed_churned,
        cast(unexposed as {{ dbt.type_bigint() }}) as unexposed,
        cast(unexposed_churned as {{ dbt.type_bigint() }}) as unexposed_churned,
        cast(round(cast(churn_rate_exposed as decimal(38, 12)), 9) as {{ liucun.type_double() }}) as churn_rate_exposed,
        cast(round(cast(churn_rate_unexposed as decimal(38, 12)), 9) as {{ liucun.type_double() }}) as churn_rate_unexposed,
        cast(round(cast(lift as decimal(38, 12)), 9) as {{ liucun.type_double() }}) as lift,
        cast(round(cast(lift_ci_lower as decimal(38, 12)), 9) as {{ liucun.type_double() }}) as lift_ci_lower,
        cast(round(cast(lift_ci_upper as decimal(38, 12)), 9) as {{ liucun.type_double() }}) as lift_ci_upper,
        cast(round(cast(odds_ratio as decimal(38, 12)), 9) as {{ liucun.type_double() }}) as odds_ratio,
        cast(round(cast(log_odds_ratio_se as decimal(38, 12)), 9) as {{ liucun.type_double() }}) as log_odds_ratio_se,
        cast(round(cast(odds_ratio_ci_lower as decimal(38, 12)), 9) as {{ liucun.type_double() }}) as odds_ratio_ci_lower,
        cast(round(cast(odds_ratio_ci_upper as decimal(38, 12)), 9) as {{ liucun.type_double() }}) as odds_ratio_ci_upper,
        is_ranked,
        cast(driver_rank as {{ dbt.type_bigint() }}) as driver_rank,
        cast({{ var('churn_driver_lookback_days') }} as {{ dbt.type_bigint() }}) as lookback_days,
        cast({{ var('churn_driver_horizon_days') }} as {{ dbt.type_bigint() }}) as horizon_days,
        cast({{ min_support }} as {{ dbt.type_bigint() }}) as min_support
    from ranked

)

select * from final
