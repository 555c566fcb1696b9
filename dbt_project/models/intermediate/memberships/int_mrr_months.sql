-- One row per business-local calendar month from the first month any customer had MRR
-- (int_customer_mrr_changes) to the month holding the as-of date, with no gaps: the months of the
-- MRR marts. A month is complete when the as-of date is its last day or later; the as-of month's
-- figures run to the as-of date.
with recursive bounds as (

    select
        min(month_start) as first_month,
        cast({{ dbt.date_trunc('month', liucun.as_of_date()) }} as date) as last_month
    from {{ ref('int_customer_mrr_changes') }}

),

spine (month_start, last_month) as (

    select first_month, last_month from bounds where first_month is not null
    union all
    select cast({{ dbt.dateadd('month', 1, 'month_start') }} as date), last_month
    from spine
    where month_start < last_month

)

select
    month_start,
    cast({{ dbt.dateadd('month', 1, 'month_start') }} as date) as next_month_start,
    -- the day the month's closing figures are taken: its last day, or the as-of date in its month
    case when cast({{ dbt.dateadd('month', 1, 'month_start') }} as date) <= {{ liucun.as_of_date() }}
         then cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'month_start')) }} as date)
         else {{ liucun.as_of_date() }} end as closing_date,
    cast({{ dbt.dateadd('month', 1, 'month_start') }} as date)
        <= cast({{ dbt.dateadd('day', 1, liucun.as_of_date()) }} as date) as is_complete
from spine
