-- One row per paid membership started on or before the as-of date: how many contract periods it
-- has paid and how many renewal decisions have been observed, the input of the shifted-beta-
-- geometric renewal model (flows/models/sbg.py, fitted per plan by flows/models/churn_scoring.py).
-- A membership that ended on or before the as-of date (cancelled, or not paid: involuntary) did not
-- renew after its last paid period: it said no at the end of period paid_periods. That "no" counts
-- as an observed decision only once the period has ended by the as-of date: members decide to
-- renew only at a period's end while they may cancel any time before it, so counting early
-- cancellations of periods still running (with no renewals of those periods yet possible) would
-- bias the retention of the latest periods down — for annual plans, to zero. Until then the
-- membership is censored after paid_periods - 1 decisions, as one still running. Memberships whose
-- first period was never paid are left out: they were never members.
-- Definitions: doc('membership_renewal_definitions').
{%- set as_of = liucun.as_of_date() %}
{%- set period_months = var('membership_plan_period_months', {'monthly': 1, 'annual': 12}) %}
with memberships as (

    select * from {{ ref('stg_billing__memberships') }}
    where {{ liucun.to_business_date('started_at') }} <= {{ as_of }}

),

paid as (

    select membership_id, count(distinct billing_period_start) as paid_periods
    from {{ ref('stg_billing__invoices') }}
    where status = 'paid'
      and {{ liucun.to_business_date('attempted_at') }} <= {{ as_of }}
    group by membership_id

),

final as (

    select
        memberships.membership_id,
        memberships.crm_id,
        memberships.plan,
        {{ liucun.to_business_date('memberships.started_at') }} as start_date,
        cast({{ dbt.date_trunc('month', liucun.to_business_date('memberships.started_at')) }} as date)
            as start_cohort,
        cast(paid.paid_periods as {{ dbt.type_bigint() }}) as paid_periods,
        case memberships.plan
            {%- for plan, months in period_months.items() %}
            when '{{ plan }}' then {{ months | int }}
            {%- endfor %}
        end as period_months,
        coalesce(memberships.ended_at is not null
                 and {{ liucun.to_business_date('memberships.ended_at') }} <= {{ as_of }}, false) as is_cancelled,
        case when memberships.ended_at is not null
                  and {{ liucun.to_business_date('memberships.ended_at') }} <= {{ as_of }}
             then memberships.end_reason end as end_reason
    from memberships
    inner join paid on memberships.membership_id = paid.membership_id

),

with_period_end as (

    select
        final.*,
        cast({{ dbt.dateadd('month', 'paid_periods * period_months', 'start_date') }} as date)
            as last_paid_period_end
    from final

)

select
    membership_id,
    crm_id,
    plan,
    start_date,
    start_cohort,
    paid_periods,
    cast(period_months as {{ dbt.type_bigint() }}) as period_months,
    last_paid_period_end,
    is_cancelled,
    end_reason,
    is_cancelled and last_paid_period_end <= {{ as_of }} as is_cancellation_observed,
    -- renewal decisions observed: every paid period's end for a cancellation observed (the last
    -- one a "no"), all but the last paid period's otherwise
    cast(case when is_cancelled and last_paid_period_end <= {{ as_of }} then paid_periods
              else paid_periods - 1 end as {{ dbt.type_bigint() }}) as renewal_decisions,
    cast(paid_periods - 1 as {{ dbt.type_bigint() }}) as renewals
from with_period_end
