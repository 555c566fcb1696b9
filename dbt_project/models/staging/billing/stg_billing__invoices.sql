with source as (

    select * from {{ source('raw', 'invoices') }}

),

renamed as (

    select
        cast(invoice_id as {{ dbt.type_string() }}) as invoice_id,
        cast(membership_id as {{ dbt.type_string() }}) as membership_id,
        cast(crm_id as {{ dbt.type_string() }}) as crm_id,
        cast(billing_period_start as date) as billing_period_start,
        cast(attempted_at as {{ dbt.type_timestamp() }}) as attempted_at,
        cast(attempt_number as {{ dbt.type_bigint() }}) as attempt_number,
        cast(amount as decimal(18, 2)) as amount,
        cast(plan as {{ dbt.type_string() }}) as plan,
        cast(status as {{ dbt.type_string() }}) as status,
        cast(failure_reason as {{ dbt.type_string() }}) as failure_reason,
        _source as source_name,
        _load_id as load_id
    from source

)

select * from renamed
