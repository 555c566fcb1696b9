with source as (

    select * from {{ source('raw', 'memberships') }}

),

renamed as (

    select
        cast(membership_id as {{ dbt.type_string() }}) as membership_id,
        cast(crm_id as {{ dbt.type_string() }}) as crm_id,
        cast(plan as {{ dbt.type_string() }}) as plan,
        cast(started_at as {{ dbt.type_timestamp() }}) as started_at,
        cast(ended_at as {{ dbt.type_timestamp() }}) as ended_at,
        cast(end_reason as {{ dbt.type_string() }}) as end_reason,
        _source as source_name,
        _load_id as load_id
    from source

)

select * from renamed
