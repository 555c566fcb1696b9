-- One row per customer with at least one qualifying purchase (net amount above
-- var('min_qualifying_amount')) on or before the as-of date: the BG/NBD summary in DAYS.
-- Purchases are counted per business-local purchase day, so several orders on one day are one
-- purchase. frequency x = purchase days - 1 (repeat purchase days), recency t_x = days from the
-- first to the last purchase day, age T = days from the first purchase day to the as-of date.
-- flows/models/churn_scoring.py fits the BG/NBD model on this table (schema ml).
with orders as (

    select * from {{ ref('int_orders_attributed') }}
    where customer_id is not null
      and net_amount > {{ var('min_qualifying_amount') }}
      and order_date <= {{ liucun.as_of_date() }}

),

purchase_days as (

    select
        customer_id,
        count(distinct order_date) as purchase_days,
        min(order_date) as first_purchase_date,
        max(order_date) as last_purchase_date
    from orders
    group by customer_id

),

final as (

    select
        customer_id,
        cast(purchase_days - 1 as {{ dbt.type_bigint() }}) as frequency,
        cast({{ dbt.datediff('first_purchase_date', 'last_purchase_date', 'day') }}
            as {{ dbt.type_bigint() }}) as recency_days,
        cast({{ dbt.datediff('first_purchase_date', liucun.as_of_date(), 'day') }}
            as {{ dbt.type_bigint() }}) as age_days,
        first_purchase_date,
        last_purchase_date,
        {{ liucun.as_of_date() }} as as_of_date
    from purchase_days

)

select * from final
