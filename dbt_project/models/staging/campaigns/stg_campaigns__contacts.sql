with source as (

    select * from {{ source('raw', 'campaign_contacts') }}

),

renamed as (

    select
        cast(contact_id as {{ dbt.type_string() }}) as contact_id,
        cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
        cast(crm_id as {{ dbt.type_string() }}) as crm_id,
        cast(phone_hash as {{ dbt.type_string() }}) as phone_hash,
        cast(wechat_unionid as {{ dbt.type_string() }}) as wechat_unionid,
        cast(assigned_group as {{ dbt.type_string() }}) as assigned_group,
        cast(sent_at as {{ dbt.type_timestamp() }}) as sent_at,
        cast(delivered as {{ dbt.type_boolean() }}) as delivered,
        cast(opened_at as {{ dbt.type_timestamp() }}) as opened_at,
        cast(coupon_code as {{ dbt.type_string() }}) as coupon_code,
        cast(redeemed_at as {{ dbt.type_timestamp() }}) as redeemed_at,
        cast(redeemed_order_id as {{ dbt.type_string() }}) as redeemed_order_id,
        _source as source_name,
        _load_id as load_id
    from source

)

select * from renamed
