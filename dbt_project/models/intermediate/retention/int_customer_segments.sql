-- One row per customer: their value of each segment type the retention counts split by
-- (macros/segments.sql): acquisition_channel, first_order_channel, region and value_tier (lifetime
-- net revenue against var('value_tier_thresholds')). Missing values are 'unknown'.
-- A view: read once, by int_retention_period_counts.
{{ config(materialized='view') }}
{%- set tiers = var('value_tier_thresholds', {'high': 2000, 'medium': 500}) %}
with customers as (

    select * from {{ ref('dim_customers') }}

),

final as (

    select
        customer_id,
        coalesce(acquisition_channel, 'unknown') as acquisition_channel,
        coalesce(first_order_channel, 'unknown') as first_order_channel,
        coalesce(region, 'unknown') as region,
        case
            when net_revenue >= {{ tiers['high'] }} then 'high'
            when net_revenue >= {{ tiers['medium'] }} then 'medium'
            else 'low'
        end as value_tier
    from customers

)

select * from final
