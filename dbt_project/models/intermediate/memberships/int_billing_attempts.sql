{{ config(materialized='view') }}
-- One row per payment attempt made on or before the as-of date (key membership_id, period_start,
-- attempt_rank): the billed period it is for — an invoice; period_start is the billing period start,
-- or the attempt's business date when a source has none — and its place among that period's
-- attempts (attempt_rank 1 = the first try, 2 = the first dunning retry; by attempt_number, then
-- time, so a source that numbers attempts differently or gives each attempt an invoice id of its
-- own still lines them up). Read by the MRR segments and the dunning marts.
{%- set as_of = liucun.as_of_date() %}
with attempts as (

    select
        membership_id,
        coalesce(billing_period_start, {{ liucun.to_business_date('attempted_at') }}) as period_start,
        invoice_id,
        attempt_number,
        attempted_at,
        amount,
        plan,
        status,
        failure_reason
    from {{ ref('stg_billing__invoices') }}
    where {{ liucun.to_business_date('attempted_at') }} <= {{ as_of }}

)

select
    attempts.*,
    cast(row_number() over (
        partition by membership_id, period_start order by attempt_number, attempted_at, invoice_id
    ) as {{ dbt.type_bigint() }}) as attempt_rank
from attempts
