with source as (

    select * from {{ source('raw', 'survey_responses') }}

),

renamed as (

    select
        cast(response_id as {{ dbt.type_string() }}) as response_id,
        cast(crm_id as {{ dbt.type_string() }}) as crm_id,
        cast(survey_type as {{ dbt.type_string() }}) as survey_type,
        cast(score as {{ dbt.type_bigint() }}) as score,
        cast(responded_at as {{ dbt.type_timestamp() }}) as responded_at,
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(ticket_id as {{ dbt.type_string() }}) as ticket_id,
        cast(comment as {{ dbt.type_string() }}) as comment,
        _source as source_name,
        _load_id as load_id
    from source

)

select * from renamed
