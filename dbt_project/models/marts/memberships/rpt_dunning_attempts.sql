-- One row per business-local month of first failed payment attempts and retry that at least one of
-- the month's invoices reached (key month_start, attempt_number; attempt 2 is the first retry): the
-- invoices retried, how many that retry recovered and for how much, and the recovery through this
-- retry as a share of the month's failed invoices and amount (int_dunning_invoices). Attempts after
-- an invoice was paid do not count. Definitions: doc('mrr_definitions').
with invoices as (

    select * from {{ ref('int_dunning_invoices') }}

),

attempts as (

    select * from {{ ref('int_billing_attempts') }}

),

month_failed as (

    select month_start, count(*) as failed_invoices, sum(amount) as failed_amount
    from invoices
    group by month_start

),

per_attempt as (

    select
        invoices.month_start,
        attempts.attempt_rank as attempt_number,
        count(*) as invoices_retried,
        sum(case when invoices.recovered_at_attempt = attempts.attempt_rank then 1 else 0 end)
            as recovered_invoices,
        sum(case when invoices.recovered_at_attempt = attempts.attempt_rank then invoices.amount else 0 end)
            as recovered_amount
    from invoices
    inner join attempts
        on invoices.membership_id = attempts.membership_id and invoices.period_start = attempts.period_start
    where attempts.attempt_rank >= 2
      and (invoices.recovered_at_attempt is null or attempts.attempt_rank <= invoices.recovered_at_attempt)
    group by invoices.month_start, attempts.attempt_rank

),

cumulative as (

    select
        per_attempt.*,
        sum(recovered_invoices) over (
            partition by month_start order by attempt_number rows between unbounded preceding and current row
        ) as cumulative_recovered_invoices,
        sum(recovered_amount) over (
            partition by month_start order by attempt_number rows between unbounded preceding and current row
        ) as cumulative_recovered_amount
    from per_attempt

)

select
    cumulative.month_start,
    cast(cumulative.attempt_number as {{ dbt.type_bigint() }}) as attempt_number,
    cast(month_failed.failed_invoices as {{ dbt.type_bigint() }}) as failed_invoices,
    cast(month_failed.failed_amount as decimal(18, 2)) as failed_amount,
    cast(cumulative.invoices_retried as {{ dbt.type_bigint() }}) as invoices_retried,
    cast(cumulative.recovered_invoices as {{ dbt.type_bigint() }}) as recovered_invoices,
    cast(cumulative.recovered_amount as decimal(18, 2)) as recovered_amount,
    {{ liucun.ratio('cumulative.recovered_invoices', 'cumulative.invoices_retried') }} as attempt_recovery_rate,
    cast(cumulative.cumulative_recovered_invoices as {{ dbt.type_bigint() }}) as cumulative_recovered_invoices,
    cast(cumulative.cumulative_recovered_amount as decimal(18, 2)) as cumulative_recovered_amount,
    {{ liucun.ratio('cumulative.cumulative_recovered_amount', 'month_failed.failed_amount') }}
        as cumulative_recovery_rate
from cumulative
inner join month_failed on cumulative.month_start = month_failed.month_start
