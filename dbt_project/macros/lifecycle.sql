{#- The business lifecycle stage at the end of `day` (fct_customer_lifecycle), from the last purchase
    and the last cancellation up to that day, the first purchase and the end of its growth window:
    prospect (never bought), churned (cancelled after the last purchase, or no purchase for
    var('lifecycle_churned_days')), dormant (var('lifecycle_dormant_days')), new (first purchase
    less than var('lifecycle_new_days') ago), growth (before growth_ends_on), else mature. -#}
{% macro lifecycle_stage(last_purchase_date, last_cancelled_on, first_purchase_date, growth_ends_on, day) -%}
    case
        when {{ last_purchase_date }} is null then 'prospect'
        when {{ last_cancelled_on }} is not null and {{ last_cancelled_on }} >= {{ last_purchase_date }} then 'churned'
        when {{ dbt.datediff(last_purchase_date, day, 'day') }} >= {{ var('lifecycle_churned_days') }} then 'churned'
        when {{ dbt.datediff(last_purchase_date, day, 'day') }} >= {{ var('lifecycle_dormant_days') }} then 'dormant'
        when {{ dbt.datediff(first_purchase_date, day, 'day') }} < {{ var('lifecycle_new_days') }} then 'new'
        when {{ day }} < {{ growth_ends_on }} then 'growth'
        else 'mature'
    end
{%- endmacro %}
