with source as (

    select * from {{ source('raw', 'orders') }}

),

renamed as (

    select
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(ordered_at as {{ dbt.type_timestamp() }}) as ordered_at,
        cast(channel as {{ dbt.type_string() }}) as channel,
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        cast(crm_id as {{ dbt.type_string() }}) as crm_id,
        cast(member_card as {{ dbt.type_string() }}) as member_card,
        cast(phone_hash as {{ dbt.type_string() }}) as phone_hash,
        cast(wechat_unionid as {{ dbt.type_string() }}) as wechat_unionid,
        cast(item_count as {{ dbt.type_bigint() }}) as item_count,
        cast(gross_amount as decimal(18, 2)) as gross_amount,
        cast(discount_amount as decimal(18, 2)) as discount_amount,
        cast(net_amount as decimal(18, 2)) as net_amount,
        cast(refund_amount as decimal(18, 2)) as refund_amount,
        cast(is_returned as {{ dbt.type_boolean() }}) as is_returned,
        cast(referral_code as {{ dbt.type_string() }}) as referral_code,
        cast(coupon_code as {{ dbt.type_string() }}) as coupon_code,
        cast(promised_delivery_date as date) as promised_delivery_date,
        cast(delivered_at as {{ dbt.type_timestamp() }}) as delivered_at,
        _source as source_name,
        _load_id as load_id
    from source

)

select * from renamed
