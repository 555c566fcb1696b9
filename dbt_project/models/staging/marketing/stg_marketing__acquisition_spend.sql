with source as (

    select * from {{ source('raw', 'acquisition_spend') }}

),

renamed as (

    select
        cast(month as {{ dbt.type_string() }}) as spend_month,
        cast(channel as {{ dbt.type_string() }}) as channel,
        cast(spend_cny as decimal(18, 2)) as spend_cny,
        cast(impressions as {{ dbt.type_bigint() }}) as impressions,
        cast(clicks as {{ dbt.type_bigint() }}) as clicks,
        cast(new_customers_reported as {{ dbt.type_bigint() }}) as new_customers_reported,
        _source as source_name,
        _load_id as load_id
    from source

)

select * from renamed
