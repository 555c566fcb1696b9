-- Orders with the customer they belong to (crm_id, else member card, else phone, else WeChat
-- unionid) and their business-local date. Orders with no usable identifier keep customer_id null.
with orders as (

    select * from {{ ref('stg_commerce__orders') }}

),

id_map as (

    select * from {{ ref('int_identifiers_mapped_to_customers') }}

),

resolved as (

    select
        orders.*,
        coalesce(
            by_crm.customer_key,
            case when orders.crm_id is not null then {{ dbt.concat(["'crm:'", "orders.crm_id"]) }} end,
            by_card.customer_key,
            by_phone.customer_key,
            case when orders.wechat_unionid is not null
                then {{ dbt.concat(["'wx:'", "orders.wechat_unionid"]) }} end
        ) as customer_key
    from orders
    left join id_map as by_crm
        on by_crm.identifier_type = 'crm_id' and by_crm.identifier_value = orders.crm_id
    left join id_map as by_card
        on by_card.identifier_type = 'member_card' and by_card.identifier_value = orders.member_card
    left join id_map as by_phone
        on by_phone.identifier_type = 'phone' and by_phone.identifier_value = orders.phone_hash

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
        item_count,
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
