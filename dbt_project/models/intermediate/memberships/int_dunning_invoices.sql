-- One row per billed period (an invoice: membership_id, period_start; sources may give each attempt
-- an invoice id of its own) whose first attempt failed on or before the as-of date: the
-- business-local month of that failure, the amount owed, the attempts made by the as-of date, the
-- attempt that was paid (a dunning retry) and how it stands: recovered (paid by a retry), lost
-- (unpaid, and the membership has ended by the as-of date) or open (unpaid, still being retried).
-- Definitions: doc('mrr_definitions').
{%- set as_of = liucun.as_of_date() %}
with attempts as (

    select * from {{ ref('int_billing_attempts') }}

),

firsts as (

    select invoice_id, membership_id, period_start, attempted_at as failed_at, amount, failure_reason
    from attempts
    where attempt_rank = 1 and status = 'failed'

),

ended as (

    select membership_id
    from {{ ref('stg_billing__memberships') }}
    where ended_at is not null and {{ liucun.to_business_date('ended_at') }} <= {{ as_of }}

),

outcomes as (

    select
        attempts.membership_id,
        attempts.period_start,
        count(*) as attempts,
        min(case when attempts.status = 'paid' then attempts.attempt_rank end) as paid_attempt
    from attempts
    inner join firsts
        on attempts.membership_id = firsts.membership_id and attempts.period_start = firsts.period_start
    group by attempts.membership_id, attempts.period_start

)

select
    firsts.membership_id,
    firsts.period_start,
    firsts.invoice_id,
    {{ liucun.to_business_date('firsts.failed_at') }} as failed_date,
    cast({{ dbt.date_trunc('month', liucun.to_business_date('firsts.failed_at')) }} as date) as month_start,
    firsts.failure_reason,
    firsts.amount,
    cast(outcomes.attempts as {{ dbt.type_bigint() }}) as attempts,
    cast(outcomes.paid_attempt as {{ dbt.type_bigint() }}) as recovered_at_attempt,
    case
        when outcomes.paid_attempt is not null then 'recovered'
        when ended.membership_id is not null then 'lost'
        else 'open'
    end as dunning_status
from firsts
inner join outcomes
    on firsts.membership_id = outcomes.membership_id and firsts.period_start = outcomes.period_start
left join ended on firsts.membership_id = ended.membership_id
