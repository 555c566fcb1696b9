-- One row per billed period of a paid membership, as of the as-of date: the monthly recurring
-- revenue (MRR) the period contributes to its customer and the business dates it contributes it
-- from and until. MRR = the period's invoiced amount (its first attempt's) / the months of the plan
-- the invoice bills (the invoice's plan, else the membership's; var membership_plan_period_months):
-- an annual 238.00 is 19.83 a month. A period counts from its billing period start whether or not
-- it has been paid (dunning keeps a subscription's MRR until it ends, as ChartMogul counts unpaid
-- invoices) and until the next billed period starts (a paused membership keeps its last MRR until
-- it is billed again). The last one runs until the membership's MRR ends: never while it runs; when
-- it has ended by the as-of date, at the end of its last paid period or the end date, whichever is
-- later, under var mrr_churn_recognition 'end_of_paid_period' (ChartMogul's default: a member who
-- cancels mid-period has paid for it), at the end date under 'immediate'. Memberships whose first
-- period was never paid were never members and are left out (as in int_membership_renewals).
-- Definitions: doc('mrr_definitions').
{%- set as_of = liucun.as_of_date() %}
{%- set period_months = var('membership_plan_period_months', {'monthly': 1, 'annual': 12}) %}
{%- set recognition = var('mrr_churn_recognition', 'end_of_paid_period') %}
{%- if recognition not in ['end_of_paid_period', 'immediate'] %}
    {{ exceptions.raise_compiler_error("var('mrr_churn_recognition') must be end_of_paid_period or immediate, not " ~ recognition) }}
{%- endif %}
with id_map as (

    select identifier_value as crm_id, customer_id
    from {{ ref('int_identifiers_mapped_to_customers') }}
    where identifier_type = 'crm_id'

),

memberships as (

    select
        membership_id,
        crm_id,
        plan,
        {{ liucun.to_business_date('started_at') }} as start_date,
        case when ended_at is not null and {{ liucun.to_business_date('ended_at') }} <= {{ as_of }}
             then {{ liucun.to_business_date('ended_at') }} end as end_date
    from {{ ref('stg_billing__memberships') }}
    where {{ liucun.to_business_date('started_at') }} <= {{ as_of }}

),

billed as (

    -- one row per billed period: the first attempt's amount and plan, and whether any attempt paid
    select
        attempts.membership_id,
        attempts.period_start,
        max(case when attempts.attempt_rank = 1 then attempts.amount end) as amount,
        max(case when attempts.attempt_rank = 1 then attempts.plan end) as invoice_plan,
        max(case when attempts.status = 'paid' then 1 else 0 end) = 1 as is_paid
    from {{ ref('int_billing_attempts') }} as attempts
    group by attempts.membership_id, attempts.period_start

),

periods as (

    select
        billed.membership_id,
        id_map.customer_id,
        memberships.start_date,
        memberships.end_date,
        coalesce(billed.invoice_plan, memberships.plan) as plan,
        billed.period_start,
        billed.amount,
        billed.is_paid,
        case coalesce(billed.invoice_plan, memberships.plan)
            {%- for plan, months in period_months.items() %}
            when '{{ plan }}' then {{ months | int }}
            {%- endfor %}
        end as period_months,
        lead(billed.period_start) over (
            partition by billed.membership_id order by billed.period_start
        ) as next_period_start
    from billed
    inner join memberships on billed.membership_id = memberships.membership_id
    left join id_map on memberships.crm_id = id_map.crm_id

),

paid_through as (

    -- the end of the membership's last paid period; memberships never paid are left out here
    select
        membership_id,
        max(cast({{ dbt.dateadd('month', 'period_months', 'period_start') }} as date)) as paid_through_date
    from periods
    where is_paid
    group by membership_id

),

bounded as (

    select
        periods.*,
        paid_through.paid_through_date,
        case
            when periods.end_date is null then null
            {%- if recognition == 'end_of_paid_period' %}
            when paid_through.paid_through_date > periods.end_date then paid_through.paid_through_date
            {%- endif %}
            else periods.end_date
        end as mrr_end_date
    from periods
    inner join paid_through on periods.membership_id = paid_through.membership_id

),

final as (

    select
        membership_id,
        customer_id,
        plan,
        period_start,
        cast(period_months as {{ dbt.type_bigint() }}) as period_months,
        amount,
        cast(round(amount / period_months, 2) as decimal(18, 2)) as mrr,
        is_paid,
        case when period_start < start_date then start_date else period_start end as valid_from,
        case
            when next_period_start is null then mrr_end_date
            when mrr_end_date is not null and mrr_end_date < next_period_start then mrr_end_date
            else next_period_start
        end as valid_to,
        mrr_end_date,
        paid_through_date
    from bounded

)

select *
from final
-- a period that starts after its membership's MRR ended contributes nothing
where valid_to is null or valid_to > valid_from
