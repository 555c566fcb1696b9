-- One row per customer and business date on which the customer's MRR changed, up to the as-of
-- date: MRR before and after, and the ChartMogul movement the change is. A customer's MRR on a day
-- is the sum over their memberships' billed periods running that day (int_membership_mrr_segments:
-- from valid_from, until valid_to); a renewal at the same price changes nothing and has no row.
-- Movements (doc 'mrr_definitions'), each condition written out in full so that no order of the
-- CASE can take a churn or a reactivation for a contraction or an expansion:
--   new           0 -> > 0, the customer's first MRR (or a return more than
--                 var mrr_reactivation_window_months after their last churn, when that var is set)
--   reactivation  0 -> > 0 after an earlier churn
--   expansion     > 0 -> more;  contraction  > 0 -> less but > 0;  churn  > 0 -> 0
{%- set as_of = liucun.as_of_date() %}
{%- set window_months = var('mrr_reactivation_window_months', none) %}
with segments as (

    select customer_id, valid_from, valid_to, mrr
    from {{ ref('int_membership_mrr_segments') }}
    where customer_id is not null

),

deltas as (

    select customer_id, valid_from as change_date, mrr as delta
    from segments
    where valid_from <= {{ as_of }}

    union all

    select customer_id, valid_to as change_date, -mrr as delta
    from segments
    where valid_to <= {{ as_of }}

),

daily as (

    select customer_id, change_date, sum(delta) as mrr_change
    from deltas
    group by customer_id, change_date

),

running as (

    select
        customer_id,
        change_date,
        mrr_change,
        sum(mrr_change) over (
            partition by customer_id order by change_date
            rows between unbounded preceding and current row
        ) as mrr_after
    from daily
    where mrr_change <> 0

),

with_history as (

    select
        customer_id,
        change_date,
        mrr_after - mrr_change as mrr_before,
        mrr_after,
        mrr_change,
        -- the last day before this change on which the customer's MRR fell to 0 (their last churn)
        max(case when mrr_after = 0 then change_date end) over (
            partition by customer_id order by change_date
            rows between unbounded preceding and 1 preceding
        ) as last_churn_date
    from running

),

classified as (

    select
        customer_id,
        change_date,
        cast({{ dbt.date_trunc('month', 'change_date') }} as date) as month_start,
        cast(mrr_before as decimal(18, 2)) as mrr_before,
        cast(mrr_after as decimal(18, 2)) as mrr_after,
        cast(mrr_change as decimal(18, 2)) as mrr_change,
        last_churn_date,
        case
            when mrr_before = 0 and mrr_after > 0 and (last_churn_date is null
                {%- if window_months is not none %}
                 or change_date > cast({{ dbt.dateadd('month', window_months | int, 'last_churn_date') }} as date)
                {%- endif %})
                then 'new'
            when mrr_before = 0 and mrr_after > 0 then 'reactivation'
            when mrr_before > 0 and mrr_after = 0 then 'churn'
            when mrr_before > 0 and mrr_after > mrr_before then 'expansion'
            when mrr_before > 0 and mrr_after < mrr_before and mrr_after > 0 then 'contraction'
        end as movement_type
    from with_history

)

select
    customer_id,
    change_date,
    month_start,
    mrr_before,
    mrr_after,
    mrr_change,
    movement_type,
    -- the movement's size, positive whichever its direction
    cast(case when mrr_change < 0 then -mrr_change else mrr_change end as decimal(18, 2)) as movement_mrr,
    last_churn_date
from classified
