-- One row per complete period: active customers split into new, returning and resurrecting, and
-- the previous period's active customers split into returning and dormant (growth accounting).
-- These are the sets of the retention counts' active_in_period base for all customers: E = new +
-- returning + resurrecting, S = returning + dormant, returning = retained (int_retention_period_counts).
with counts as (

    select * from {{ ref('int_retention_period_counts') }}
    where segment_type = 'all'
      and base_definition = 'active_in_period'

),

final as (

    select
        period_grain,
        period_start,
        period_end,
        customers_end as customers_active,
        customers_start as customers_previous_active,
        customers_new,
        customers_retained as customers_returning,
        customers_end - customers_new - customers_retained as customers_resurrecting,
        customers_start - customers_retained as customers_dormant,
        {{ liucun.ratio(
            'customers_end - customers_retained',
            'customers_start - customers_retained') }} as quick_ratio
    from counts

)

select * from final
