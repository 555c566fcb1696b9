with counts as (

    select * from {{ ref('int_retention_period_counts') }}
    where is_complete

),

final as (

    select
        period_grain,
        period_start,
        period_end,
        segment_type,
        segment_value,
        base_definition,
        customers_start,
        customers_end,
        customers_new,
        customers_retained,
        customers_end - customers_new - customers_retained as customers_reactivated,
        customers_start - customers_retained as customers_churned,
        {{ liucun.ratio('customers_end - customers_new', 'customers_start') }} as crr,
        {{ liucun.ratio('customers_retained', 'customers_start') }} as strict_retention_rate,
        {{ liucun.ratio('customers_start - customers_retained', 'customers_start') }} as churn_rate,
        revenue_start,
        revenue_end,
        revenue_retained_net,
        revenue_retained_gross,
        {{ liucun.ratio('revenue_retained_gross', 'revenue_start') }} as gross_revenue_retention,
        {{ liucun.ratio('revenue_retained_net', 'revenue_start') }} as net_revenue_retention
    from counts

)

select * from final
