-- One row per order. A daily build replaces only the orders int_orders_attributed attributed again.
-- depends_on: {{ ref('int_orders_unioned') }}
{{ liucun.absorbing_config(strategy='append', after='int_identifiers_observed', customers=true,
                           pre_hook=["{{ liucun.delete_reattributed_orders() }}"]) }}
with orders as (

    select * from {{ ref('int_orders_attributed') }}
    {%- if liucun.absorbs_new_loads() %}
    where order_id in (
        select order_id from {{ ref('int_orders_unioned') }} where {{ liucun.reattributed_orders() }})
    {%- endif %}

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
