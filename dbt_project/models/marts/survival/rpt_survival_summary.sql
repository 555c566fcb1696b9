-- One row per group (group_type, group_value) of rpt_survival_curves: customers, churned and
-- censored; the median survival (the first duration whose Kaplan-Meier estimate is 0.5 or less,
-- to within 1e-9: the estimate is a sum of logarithms, and one that is exactly one half in exact
-- arithmetic must count; null while the curve has not come down to 0.5) with its 95 % interval (the first durations at
-- which the interval's lower and upper bounds reach 0.5, as lifelines reads it); and the estimate
-- at 90, 180 and 365 days (null beyond the group's longest follow-up unless the curve already
-- reached 0). Definitions: doc('survival_definitions').
with curves as (

    select * from {{ ref('rpt_survival_curves') }}

),

groups as (

    select
        group_type,
        group_value,
        max(customers_at_risk) as customers,
        sum(churned) as churned,
        sum(censored) as censored,
        max(duration_days) as longest_follow_up_days,
        min(survival) as last_survival,
        min(case when survival <= 0.5 + 1e-9 then duration_days end) as median_survival_days,
        min(case when survival_ci_low <= 0.5 + 1e-9 then duration_days end) as median_ci_low_days,
        min(case when survival_ci_high <= 0.5 + 1e-9 then duration_days end) as median_ci_high_days,
        {%- for h in [90, 180, 365] %}
        max(case when duration_days <= {{ h }} then duration_days end) as last_duration_{{ h }}d{{ ',' if not loop.last }}
        {%- endfor %}
    from curves
    group by group_type, group_value

),

final as (

    select
        groups.group_type,
        groups.group_value,
        cast(groups.customers as {{ dbt.type_bigint() }}) as customers,
        cast(groups.churned as {{ dbt.type_bigint() }}) as churned,
        cast(groups.censored as {{ dbt.type_bigint() }}) as censored,
        cast(groups.longest_follow_up_days as {{ dbt.type_bigint() }}) as longest_follow_up_days,
        cast(groups.median_survival_days as {{ dbt.type_bigint() }}) as median_survival_days,
        cast(groups.median_ci_low_days as {{ dbt.type_bigint() }}) as median_ci_low_days,
        cast(groups.median_ci_high_days as {{ dbt.type_bigint() }}) as median_ci_high_days,
        {%- for h in [90, 180, 365] %}
        cast(case when groups.longest_follow_up_days >= {{ h }} or groups.last_survival = 0
                  then at_{{ h }}.survival end as {{ liucun.type_double() }}) as survival_{{ h }}d,
        {%- endfor %}
        curves_as_of.as_of_date
    from groups
    {%- for h in [90, 180, 365] %}
    left join curves as at_{{ h }}
        on at_{{ h }}.group_type = groups.group_type and at_{{ h }}.group_value = groups.group_value
        and at_{{ h }}.duration_days = groups.last_duration_{{ h }}d
    {%- endfor %}
    cross join (select max(as_of_date) as as_of_date from curves) as curves_as_of

)

select * from final
