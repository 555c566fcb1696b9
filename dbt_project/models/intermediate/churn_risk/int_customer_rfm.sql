-- One row per customer with at least one qualifying purchase (net amount above
-- var('min_qualifying_amount')) on or before the as-of date: the BG/NBD summary in DAYS.
-- Purchases are counted per business-local purchase day, so several orders on one day are one
-- purchase. frequency x = purchase days - 1 (repeat purchase days), recency t_x = days from the
-- first to the last purchase day, age T = days from the first purchase day to the as-of date.
-- mean_repeat_purchase_value m_x = the mean net amount of the repeat purchase days (a day's
-- qualifying orders summed; the first purchase day left out, as the BG/NBD frequency leaves it out).
-- flows/models/churn_scoring.py fits BG/NBD and the Gamma-Gamma spend model on this table (schema ml).
with orders as (

    select * from {{ ref('int_orders_attributed') }}
    where customer_id is not null
      and net_amount > {{ var('min_qualifying_amount') }}
      and order_date <= {{ liucun.as_of_date() }}

),

day_values as (

    select customer_id, order_date, sum(net_amount) as day_amount
    from orders
    group by customer_id, order_date

),

per_customer as (

    select
        customer_id,
        count(*) as purchase_days,
        min(order_date) as first_purchase_date,
        max(order_date) as last_purchase_date,
        sum(day_amount) as total_amount
    from day_values
    group by customer_id

),

first_days as (

    select day_values.customer_id, day_values.day_amount as first_day_amount
    from day_values
    inner join per_customer
        on day_values.customer_id = per_customer.customer_id
        and day_values.order_date = per_customer.first_purchase_date

),

final as (

    select
        per_customer.customer_id,
        cast(purchase_days - 1 as {{ dbt.type_bigint() }}) as frequency,
        cast({{ dbt.datediff('first_purchase_date', 'last_purchase_date', 'day') }}
            as {{ dbt.type_bigint() }}) as recency_days,
        cast({{ dbt.datediff('first_purchase_date', liucun.as_of_date(), 'day') }}
            as {{ dbt.type_bigint() }}) as age_days,
        case when purchase_days > 1
             then cast(total_amount - first_days.first_day_amount as {{ liucun.type_double() }}) / (purchase_days - 1)
        end as mean_repeat_purchase_value,
        first_purchase_date,
        last_purchase_date,
        {{ liucun.as_of_date() }} as as_of_date
    from per_customer
    inner join first_days on per_customer.customer_id = first_days.customer_id

)

select * from final
