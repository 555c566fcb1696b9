with source as (

    select * from {{ source('raw', 'campaigns') }}

),

renamed as (

    select
        cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
        cast(campaign_name as {{ dbt.type_string() }}) as campaign_name,
        cast(channel as {{ dbt.type_string() }}) as channel,
        cast(launched_at as {{ dbt.type_timestamp() }}) as launched_at,
        cast(cost_per_contact as decimal(18, 4)) as cost_per_contact,
        cast(incentive_type as {{ dbt.type_string() }}) as incentive_type,
        cast(incentive_value as decimal(18, 2)) as incentive_value,
        cast(attribution_window_days as {{ dbt.type_bigint() }}) as attribution_window_days,
        cast(target_rule as {{ dbt.type_string() }}) as target_rule,
        cast(holdout_share as {{ liucun.type_double() }}) as holdout_share,
        _source as source_name,
        _load_id as load_id
    from source

)

select * from renamed
