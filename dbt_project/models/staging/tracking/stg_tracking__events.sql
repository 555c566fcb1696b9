with source as (

    select * from {{ source('raw', 'events') }}

),

renamed as (

    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(event_ts as {{ dbt.type_timestamp() }}) as event_at,
        cast(device_id as {{ dbt.type_string() }}) as device_id,
        cast(wechat_openid as {{ dbt.type_string() }}) as wechat_openid,
        cast(wechat_unionid as {{ dbt.type_string() }}) as wechat_unionid,
        cast(crm_id as {{ dbt.type_string() }}) as crm_id,
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        cast(channel as {{ dbt.type_string() }}) as channel,
        cast(properties as {{ dbt.type_string() }}) as properties,
        _source as source_name,
        _load_id as load_id
    from source

)

select * from renamed
