-- One row per customer per segment type: 'all', acquisition_channel, first_order_channel, region
-- and value_tier (lifetime net revenue against var('value_tier_thresholds')). Missing values are
-- 'unknown'.
-- A view: read once, by int_retention_period_counts; five rows per customer are not worth writing.
{{ config(materialized='view') }}
{%- set tiers = var('value_tier_thresholds', {'high': 2000, 'medium': 500}) %}
with customers as (

    select * from {{ ref('dim_customers') }}

),

final as (

    select customer_id, 'all' as segment_type, 'all' as segment_value from customers
    union all
    select customer_id, 'acquisition_channel', coalesce(acquisition_channel, 'unknown') from customers
    union all
    select customer_id, 'first_order_channel', coalesce(first_order_channel, 'unknown') from customers
    union all
    select customer_id, 'region', coalesce(region, 'unknown') from customers
    union all
    select
        customer_id,
        'value_tier',
        case
            when net_revenue >= {{ tiers['high'] }} then 'high'
            when net_revenue >= {{ tiers['medium'] }} then 'medium'
            else 'low'
        end
    from customers

)

select * from final
