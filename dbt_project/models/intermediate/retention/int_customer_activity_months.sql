-- One row per customer per month in which they were active: a purchase with net amount above
-- var('min_qualifying_amount') (default: any positive amount), in the business timezone.
with orders as (

    select * from {{ ref('int_orders_attributed') }}

),

qualifying as (

    select
        customer_id,
        cast({{ dbt.date_trunc('month', 'order_date') }} as date) as period_start,
        net_amount
    from orders
    where customer_id is not null
      and net_amount > {{ var('min_qualifying_amount') }}

),

final as (

    select
        customer_id,
        period_start,
        count(*) as orders,
        cast(sum(net_amount) as decimal(18, 2)) as revenue
    from qualifying
    group by customer_id, period_start

)

select * from final
