with orders as (

    select * from {{ ref('int_orders_attributed') }}

),

final as (

    select
        order_id,
        customer_id,
        ordered_at,
        order_date,
        channel,
        store_id,
        item_count,
        gross_amount,
        discount_amount,
        net_amount,
        refund_amount,
        is_returned,
        net_amount > {{ var('min_qualifying_amount') }} as is_qualifying
    from orders

)

select * from final
