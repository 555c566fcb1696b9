-- One row per customer and business-local calendar month in which the customer had MRR at the
-- start or at the end of the month or moved (key customer_id, month_start): MRR at the start
-- (the day before the month begins) and at the end (its last day, or the as-of date), measured
-- on the customer's running MRR, and the month's movements summed from int_customer_mrr_changes.
-- The start and end come from the MRR a day holds, the movements from the changes: the identity
-- mrr_end = mrr_start + new + expansion + reactivation - contraction - churn is tested, not built in.
-- Definitions: doc('mrr_definitions').
with changes as (

    select * from {{ ref('int_customer_mrr_changes') }}

),

months as (

    select * from {{ ref('int_mrr_months') }}

),

spans as (

    -- each change's MRR holds from its date until the customer's next change (exclusive)
    select
        customer_id,
        change_date,
        mrr_after,
        lead(change_date) over (partition by customer_id order by change_date) as next_change_date
    from changes

),

customer_months as (

    -- months a span with MRR overlaps, and the month of every change (a churn's month)
    select distinct spans.customer_id, months.month_start, months.next_month_start, months.closing_date,
           months.is_complete
    from spans
    inner join months
        on months.next_month_start > spans.change_date
        and ((spans.mrr_after > 0 and (spans.next_change_date is null or months.month_start < spans.next_change_date))
             or months.month_start = cast({{ dbt.date_trunc('month', 'spans.change_date') }} as date))

),

opening as (

    select customer_months.customer_id, customer_months.month_start, spans.mrr_after as mrr
    from customer_months
    inner join spans
        on spans.customer_id = customer_months.customer_id
        and spans.change_date < customer_months.month_start
        and (spans.next_change_date is null or spans.next_change_date >= customer_months.month_start)

),

closing as (

    select customer_months.customer_id, customer_months.month_start, spans.mrr_after as mrr
    from customer_months
    inner join spans
        on spans.customer_id = customer_months.customer_id
        and spans.change_date <= customer_months.closing_date
        and (spans.next_change_date is null or spans.next_change_date > customer_months.closing_date)

),

moved as (

    select
        customer_id,
        month_start,
        sum(case when movement_type = 'new' then movement_mrr else 0 end) as new_mrr,
        sum(case when movement_type = 'expansion' then movement_mrr else 0 end) as expansion_mrr,
        sum(case when movement_type = 'contraction' then movement_mrr else 0 end) as contraction_mrr,
        sum(case when movement_type = 'churn' then movement_mrr else 0 end) as churned_mrr,
        sum(case when movement_type = 'reactivation' then movement_mrr else 0 end) as reactivation_mrr,
        sum(case when movement_type = 'new' then 1 else 0 end) as new_count,
        sum(case when movement_type = 'reactivation' then 1 else 0 end) as reactivation_count,
        sum(case when movement_type = 'churn' then 1 else 0 end) as churn_count,
        count(*) as changes
    from changes
    group by customer_id, month_start

)

select
    customer_months.customer_id,
    customer_months.month_start,
    cast(coalesce(opening.mrr, 0) as decimal(18, 2)) as mrr_start,
    cast(coalesce(moved.new_mrr, 0) as decimal(18, 2)) as new_mrr,
    cast(coalesce(moved.expansion_mrr, 0) as decimal(18, 2)) as expansion_mrr,
    cast(coalesce(moved.contraction_mrr, 0) as decimal(18, 2)) as contraction_mrr,
    cast(coalesce(moved.churned_mrr, 0) as decimal(18, 2)) as churned_mrr,
    cast(coalesce(moved.reactivation_mrr, 0) as decimal(18, 2)) as reactivation_mrr,
    cast(coalesce(closing.mrr, 0) as decimal(18, 2)) as mrr_end,
    cast(coalesce(moved.new_count, 0) as {{ dbt.type_bigint() }}) as new_count,
    cast(coalesce(moved.reactivation_count, 0) as {{ dbt.type_bigint() }}) as reactivation_count,
    cast(coalesce(moved.churn_count, 0) as {{ dbt.type_bigint() }}) as churn_count,
    cast(coalesce(moved.changes, 0) as {{ dbt.type_bigint() }}) as changes,
    customer_months.is_complete
from customer_months
left join opening
    on customer_months.customer_id = opening.customer_id and customer_months.month_start = opening.month_start
left join closing
    on customer_months.customer_id = closing.customer_id and customer_months.month_start = closing.month_start
left join moved
    on customer_months.customer_id = moved.customer_id and customer_months.month_start = moved.month_start
