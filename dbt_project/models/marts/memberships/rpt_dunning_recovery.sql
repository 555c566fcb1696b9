-- One row per business-local month of first failed payment attempts (key month_start): the invoices
-- whose first attempt failed that month and their amount, how many of them and how much dunning
-- recovered (paid by a retry), lost (membership ended unpaid) or still has open, and the recovery
-- rates. By attempt: rpt_dunning_attempts. Definitions: doc('mrr_definitions').
with invoices as (

    select * from {{ ref('int_dunning_invoices') }}

)

select
    month_start,
    cast(count(*) as {{ dbt.type_bigint() }}) as failed_invoices,
    cast(sum(amount) as decimal(18, 2)) as failed_amount,
    cast(sum(case when dunning_status = 'recovered' then 1 else 0 end) as {{ dbt.type_bigint() }})
        as recovered_invoices,
    cast(sum(case when dunning_status = 'recovered' then amount else 0 end) as decimal(18, 2))
        as recovered_amount,
    cast(sum(case when dunning_status = 'lost' then 1 else 0 end) as {{ dbt.type_bigint() }}) as lost_invoices,
    cast(sum(case when dunning_status = 'lost' then amount else 0 end) as decimal(18, 2)) as lost_amount,
    cast(sum(case when dunning_status = 'open' then 1 else 0 end) as {{ dbt.type_bigint() }}) as open_invoices,
    cast(sum(case when dunning_status = 'open' then amount else 0 end) as decimal(18, 2)) as open_amount,
    {{ liucun.ratio("sum(case when dunning_status = 'recovered' then amount else 0 end)", 'sum(amount)') }}
        as recovery_rate,
    {{ liucun.ratio("sum(case when dunning_status = 'recovered' then 1 else 0 end)", 'count(*)') }}
        as invoice_recovery_rate,
    sum(case when dunning_status = 'open' then 1 else 0 end) = 0 as is_settled
from invoices
group by month_start
