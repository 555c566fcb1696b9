-- One row per group (group_type, group_value) and duration_days: the Kaplan-Meier estimate of the
-- share of customers not yet churned that many days after their first purchase, with the number
-- at risk, churned and censored at that duration, and its 95 % interval (Greenwood's variance,
-- exponential / log-log form, as lifelines draws it). A row for day 0 and for every duration at
-- which a customer of the group churned or was censored (the curve is flat in between).
-- Definitions: doc('survival_definitions').
{%- set z = var('survival_ci_z', 1.959963984540054) %}
{%- set double = liucun.type_double() %}
with times as (

    select * from {{ ref('int_customer_survival_times') }}

),

grouped as (

    {{ liucun.survival_grouped('times') }}

),

-- day 0 is on every curve (survival 1 unless customers churned on their first purchase day)
observations as (

    select group_type, group_value, duration_days,
           case when churned then 1 else 0 end as churned, case when churned then 0 else 1 end as censored
    from grouped
    union all
    select distinct group_type, group_value, cast(0 as {{ dbt.type_bigint() }}), 0, 0
    from grouped

),

at_durations as (

    select
        group_type,
        group_value,
        duration_days,
        sum(churned) as churned,
        sum(censored) as censored
    from observations
    group by group_type, group_value, duration_days

),

-- at risk at t: customers whose duration is t or more (a reverse running count)
at_risk as (

    select
        *,
        sum(churned + censored) over (
            partition by group_type, group_value order by duration_days desc
            rows between unbounded preceding and current row) as customers_at_risk
    from at_durations

),

-- each duration's factor (1 - d/n) as a log, and its term of Greenwood's sum d / (n (n - d));
-- d = n (everyone left churns) ends the curve at 0
steps as (

    select
        *,
        case when churned = customers_at_risk then 1 else 0 end as ends_at_zero,
        case when churned > 0 and churned < customers_at_risk
             then ln(1 - cast(churned as {{ double }}) / cast(customers_at_risk as {{ double }}))
             else cast(0 as {{ double }}) end as log_factor,
        case when churned > 0 and churned < customers_at_risk
             then cast(churned as {{ double }})
                  / (cast(customers_at_risk as {{ double }}) * cast(customers_at_risk - churned as {{ double }}))
             else cast(0 as {{ double }}) end as greenwood_term
    from at_risk

),

running as (

    select
        *,
        sum(ends_at_zero) over (
            partition by group_type, group_value order by duration_days
            rows between unbounded preceding and current row) as ended,
        sum(log_factor) over (
            partition by group_type, group_value order by duration_days
            rows between unbounded preceding and current row) as log_survival,
        sum(greenwood_term) over (
            partition by group_type, group_value order by duration_days
            rows between unbounded preceding and current row) as greenwood_sum,
        sum(churned) over (
            partition by group_type, group_value order by duration_days
            rows between unbounded preceding and current row) as churned_to_date
    from steps

),

final as (

    select
        group_type,
        group_value,
        cast(duration_days as {{ dbt.type_bigint() }}) as duration_days,
        cast(customers_at_risk as {{ dbt.type_bigint() }}) as customers_at_risk,
        cast(churned as {{ dbt.type_bigint() }}) as churned,
        cast(censored as {{ dbt.type_bigint() }}) as censored,
        cast(churned_to_date as {{ dbt.type_bigint() }}) as churned_to_date,
        cast(case when ended > 0 then 0 else exp(log_survival) end as {{ double }}) as survival,
        cast(case when ended > 0 then 0 when log_survival = 0 then 1
                  else exp(-exp(ln(-log_survival) - {{ z }} * sqrt(greenwood_sum) / log_survival)) end
             as {{ double }}) as survival_ci_low,
        cast(case when ended > 0 then 0 when log_survival = 0 then 1
                  else exp(-exp(ln(-log_survival) + {{ z }} * sqrt(greenwood_sum) / log_survival)) end
             as {{ double }}) as survival_ci_high,
        cast(case when ended > 0 then null else sqrt(greenwood_sum) * exp(log_survival) end
             as {{ double }}) as survival_standard_error,
        {{ liucun.as_of_date() }} as as_of_date
    from running

)

select * from final
