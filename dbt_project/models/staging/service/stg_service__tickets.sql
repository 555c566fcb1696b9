with source as (

    select * from {{ source('raw', 'tickets') }}

),

renamed as (

    select
        cast(ticket_id as {{ dbt.type_string() }}) as ticket_id,
        cast(crm_id as {{ dbt.type_string() }}) as crm_id,
        cast(phone_hash as {{ dbt.type_string() }}) as phone_hash,
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(category as {{ dbt.type_string() }}) as category,
        cast(contact_channel as {{ dbt.type_string() }}) as contact_channel,
        cast(opened_at as {{ dbt.type_timestamp() }}) as opened_at,
        cast(resolved_at as {{ dbt.type_timestamp() }}) as resolved_at,
        cast(resolution_hours as {{ liucun.type_double() }}) as resolution_hours,
        cast(satisfaction_score as {{ dbt.type_bigint() }}) as satisfaction_score,
        _source as source_name,
        _load_id as load_id
    from source

)

select * from renamed
