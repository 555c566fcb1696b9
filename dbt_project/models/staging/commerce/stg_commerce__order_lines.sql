with source as (

    select * from {{ source('raw', 'order_lines') }}

),

renamed as (

    select
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(line_number as {{ dbt.type_bigint() }}) as line_number,
        cast(ordered_at as {{ dbt.type_timestamp() }}) as ordered_at,
        cast(channel as {{ dbt.type_string() }}) as channel,
        cast(crm_id as {{ dbt.type_string() }}) as crm_id,
        cast(member_card as {{ dbt.type_string() }}) as member_card,
        cast(phone_hash as {{ dbt.type_string() }}) as phone_hash,
        cast(wechat_unionid as {{ dbt.type_string() }}) as wechat_unionid,
        cast(sku as {{ dbt.type_string() }}) as sku,
        cast(quantity as {{ dbt.type_bigint() }}) as quantity,
        cast(unit_price as decimal(18, 4)) as unit_price,
        cast(line_amount as decimal(18, 2)) as line_amount,
        cast(is_return as {{ dbt.type_boolean() }}) as is_return,
        cast(region as {{ dbt.type_string() }}) as region,
        _source as source_name,
        _load_id as load_id
    from source

)

select * from renamed
