with source as (

    select * from {{ source('raw', 'customers') }}

),

renamed as (

    select
        cast(crm_id as {{ dbt.type_string() }}) as crm_id,
        cast(phone_hash as {{ dbt.type_string() }}) as phone_hash,
        cast(email_hash as {{ dbt.type_string() }}) as email_hash,
        cast(member_card as {{ dbt.type_string() }}) as member_card,
        cast(registration_channel as {{ dbt.type_string() }}) as registration_channel,
        cast(registered_at as {{ dbt.type_timestamp() }}) as registered_at,
        cast(region as {{ dbt.type_string() }}) as region,
        cast(city_tier as {{ dbt.type_bigint() }}) as city_tier,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
        _source as source_name,
        _load_id as load_id
    from source

)

select * from renamed
