-- Orders with the customer they belong to and their business-local date. An order maps through
-- any of its identifiers (crm_id, member card, phone, WeChat unionid) to the identity graph's
-- customer; all of them sit in one customer since the order links them (noisy identifiers, such as
-- a placeholder phone, map to none). Orders with no mapped identifier keep customer_id null.
-- A daily build attributes again only the new orders and those the identity graph re-clustered
-- an identifier of (macros/incremental.sql).
{{ liucun.absorbing_config(strategy='append', after='int_identifiers_observed', customers=true,
                           pre_hook=["{{ liucun.delete_reattributed_orders() }}"]) }}
with orders as (

    select * from {{ ref('int_orders_unioned') }}
    {%- if liucun.absorbs_new_loads() %}
    where {{ liucun.reattributed_orders() }}
    {%- endif %}

),

id_map as (

    select * from {{ ref('int_identifiers_mapped_to_customers') }}

),

resolved as (

    select
        orders.*,
        coalesce(
            by_crm.customer_key,
            by_card.customer_key,
            by_phone.customer_key,
            by_unionid.customer_key
        ) as customer_key
    from orders
    left join id_map as by_crm
        on by_crm.identifier_type = 'crm_id' and by_crm.identifier_value = orders.crm_id
    left join id_map as by_card
        on by_card.identifier_type = 'member_card' and by_card.identifier_value = orders.member_card
    left join id_map as by_phone
        on by_phone.identifier_type = 'phone' and by_phone.identifier_value = orders.phone_hash
    left join id_map as by_unionid
        on by_unionid.identifier_type = 'wechat_unionid'
        and by_unionid.identifier_value = orders.wechat_unionid

),

final as (

    select
        order_id,
        case when customer_key is not null then {{ dbt.hash('customer_key') }} end as customer_id,
        customer_key,
        ordered_at,
        {{ liucun.to_business_date('ordered_at') }} as order_date,
        channel,
        store_id,
        cast(item_count as {{ dbt.type_bigint() }}) as item_count,
        gross_amount,
        discount_amount,
        net_amount,
        coalesce(refund_amount, 0) as refund_amount,
        coalesce(is_returned, false) as is_returned,
        referral_code,
        coupon_code
    from resolved

)

select * from final
