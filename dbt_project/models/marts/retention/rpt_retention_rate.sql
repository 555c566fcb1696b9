with counts as (

    select * from {{ ref('int_retention_period_counts') }}
    where is_complete

),

final as (

    select
        period_grain,
        period_start,
        period_end,
        'all' as segment_type,
        'all' as segment_value,
        'active_in_period' as base_definition,
        customers_start,
        customers_end,
        customers_new,
        customers_retained,
        customers_end - customers_new - customers_retained as customers_reactivated,
        customers_start - customers_retained as customers_churned,
        {{ liucun.ratio('customers_end - customers_new', 'customers_start') }} as crr,
        {{ liucun.ratio('customers_retained', 'customers_start') }} as strict_retention_rate,
        {{ liucun.ratio('customers_start - customers_retained', 'customers_start') }} as churn_rate
    from counts

)

select * from final
