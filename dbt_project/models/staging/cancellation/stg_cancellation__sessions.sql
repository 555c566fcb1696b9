with source as (

    select * from {{ source('raw', 'cancellation_sessions') }}

),

renamed as (

    select
        cast(session_id as {{ dbt.type_string() }}) as session_id,
        cast(membership_id as {{ dbt.type_string() }}) as membership_id,
        cast(crm_id as {{ dbt.type_string() }}) as crm_id,
        cast(started_at as {{ dbt.type_timestamp() }}) as started_at,
        cast(ended_at as {{ dbt.type_timestamp() }}) as ended_at,
        cast(reason_category as {{ dbt.type_string() }}) as reason_category,
        cast(reason_text as {{ dbt.type_string() }}) as reason_text,
        cast(offer_type as {{ dbt.type_string() }}) as offer_type,
        cast(offer_shown as {{ dbt.type_boolean() }}) as offer_shown,
        cast(offer_accepted as {{ dbt.type_boolean() }}) as offer_accepted,
        cast(outcome as {{ dbt.type_string() }}) as outcome,
        _source as source_name,
        _load_id as load_id
    from source

)

select * from renamed
