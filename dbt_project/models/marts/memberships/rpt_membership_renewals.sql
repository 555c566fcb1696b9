-- One row per membership plan and number of renewals t: the share of members still a member after t
-- renewals, observed (Kaplan-Meier over the renewal decisions seen by the as-of date, so cohorts of
-- every age count) and as the shifted-beta-geometric model fits and projects it (ml.sbg_survival,
-- flows/models/sbg.py) with its 95 % interval, and the retention rate of each renewal. Rows from
-- t = 0 to the fit's horizon (twice the longest observed run, at least 12 renewals); beyond the
-- observed renewals only the projection. Definitions: doc('membership_renewal_definitions').
{%- set as_of = liucun.as_of_date() %}
{%- set double = liucun.type_double() %}
with memberships as (

    select * from {{ ref('int_membership_renewals') }}

),

fitted as (

    select * from {{ source('ml', 'sbg_survival') }}
    where as_of_date = {{ as_of }}

),

digits as (

    select 0 as d union all select 1 union all select 2 union all select 3 union all select 4
    union all select 5 union all select 6 union all select 7 union all select 8 union all select 9

),

numbers as (

    select hundreds.d * 100 + tens.d * 10 + ones.d as n
    from digits as hundreds cross join digits as tens cross join digits as ones

),

plans as (

    select plan, count(*) as members, max(renewal_decisions) as max_decisions
    from memberships
    group by plan

),

-- every renewal decision t = 1 .. the plan's longest observed run, and t = 0 (the start)
spine as (

    select plans.plan, plans.members, plans.max_decisions, cast(numbers.n as {{ dbt.type_bigint() }}) as renewals
    from plans
    inner join numbers on numbers.n <= plans.max_decisions

),

-- at decision t: the memberships that reached the end of period t, and those that said no there
decisions as (

    select
        spine.plan,
        spine.renewals,
        spine.max_decisions,
        case when spine.renewals = 0 then spine.members
             else sum(case when memberships.renewal_decisions >= spine.renewals then 1 else 0 end) end
            as members_at_risk,
        case when spine.renewals = 0 then 0
             else sum(case when memberships.renewal_decisions = spine.renewals and memberships.is_cancellation_observed
                           then 1 else 0 end) end as cancelled
    from spine
    inner join memberships on memberships.plan = spine.plan
    group by spine.plan, spine.renewals, spine.max_decisions, spine.members

),

steps as (

    select
        *,
        case when cancelled = members_at_risk and members_at_risk > 0 then 1 else 0 end as ends_at_zero,
        case when cancelled > 0 and cancelled < members_at_risk
             then ln(1 - cast(cancelled as {{ double }}) / cast(members_at_risk as {{ double }}))
             else cast(0 as {{ double }}) end as log_factor
    from decisions

),

observed as (

    select
        plan,
        renewals,
        max_decisions,
        members_at_risk,
        cancelled,
        case when sum(ends_at_zero) over (partition by plan order by renewals
                                          rows between unbounded preceding and current row) > 0
             then cast(0 as {{ double }})
             else exp(sum(log_factor) over (partition by plan order by renewals
                                            rows between unbounded preceding and current row)) end
            as observed_survival
    from steps

),

joined as (

    select
        coalesce(observed.plan, fitted.plan) as plan,
        coalesce(observed.renewals, fitted.renewals) as renewals,
        observed.members_at_risk,
        observed.cancelled,
        observed.observed_survival,
        fitted.survival as fitted_survival,
        fitted.survival_ci_low as fitted_survival_ci_low,
        fitted.survival_ci_high as fitted_survival_ci_high,
        fitted.retention_rate as fitted_retention_rate,
        observed.plan is null as is_projection
    from observed
    full outer join fitted on observed.plan = fitted.plan and observed.renewals = fitted.renewals

)

select
    cast(plan as {{ liucun.type_text() }}) as plan,
    cast(renewals as bigint) as renewals,
    cast(members_at_risk as bigint) as members_at_risk,
    cast(cancelled as bigint) as cancelled,
    cast(members_at_risk - cancelled as bigint) as renewed,
    case when renewals > 0 and members_at_risk > 0
         then cast(members_at_risk - cancelled as {{ double }}) / members_at_risk end as observed_retention_rate,
    cast(observed_survival as {{ double }}) as observed_survival,
    cast(fitted_survival as {{ double }}) as fitted_survival,
    cast(fitted_survival_ci_low as {{ double }}) as fitted_survival_ci_low,
    cast(fitted_survival_ci_high as {{ double }}) as fitted_survival_ci_high,
    case when renewals > 0 then cast(fitted_retention_rate as {{ double }}) end as fitted_retention_rate,
    cast(is_projection as boolean) as is_projection,
    {{ as_of }} as as_of_date
from joined
