-- One row per complete period: active customers split into new, returning and resurrecting, and
-- the previous period's active customers split into returning and dormant (growth accounting).
with customer_periods as (

    select * from {{ ref('fct_customer_periods') }}

),

final as (

    select
        period_grain,
        period_start,
        period_end,
        cast(sum(case when is_active then 1 else 0 end) as {{ dbt.type_bigint() }}) as customers_active,
        cast(sum(case when was_active_previous_period then 1 else 0 end) as {{ dbt.type_bigint() }})
            as customers_previous_active,
        cast(sum(case when lifecycle_stage = 'new' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as customers_new,
        cast(sum(case when lifecycle_stage = 'returning' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as customers_returning,
        cast(sum(case when lifecycle_stage = 'resurrecting' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as customers_resurrecting,
        cast(sum(case when lifecycle_stage = 'dormant' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as customers_dormant,
        {{ liucun.ratio(
            "sum(case when lifecycle_stage in ('new', 'resurrecting') then 1 else 0 end)",
            "sum(case when lifecycle_stage = 'dormant' then 1 else 0 end)") }} as quick_ratio
    from customer_periods
    group by period_grain, period_start, period_end

)

select * from final
