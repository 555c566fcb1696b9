-- One row per complete period, lifecycle stage and metric: the metrics each stage is managed by,
-- with their numerator and denominator (value = numerator / denominator; null when it is 0).
with lifecycle as (

    select * from {{ ref('fct_customer_lifecycle') }}

),

measures as (

    select
        period_grain,
        period_start,
        -- stage counts at the period's end
        sum(case when stage = 'prospect' then 1 else 0 end) as prospects,
        sum(case when stage = 'new' then 1 else 0 end) as new_customers,
        sum(case when stage = 'growth' then 1 else 0 end) as growth_customers,
        sum(case when stage = 'mature' then 1 else 0 end) as mature_customers,
        sum(case when stage = 'dormant' then 1 else 0 end) as dormant_customers,
        sum(case when stage = 'churned' then 1 else 0 end) as churned_customers,
        -- 引入期: prospects converting to a first order; first order value
        sum(case when previous_stage = 'prospect' then 1 else 0 end) as prospects_start,
        sum(case when previous_stage = 'prospect' and purchases > 0 then 1 else 0 end) as prospects_converted,
        sum(case when is_first_purchase_period then 1 else 0 end) as first_buyers,
        sum(case when is_first_purchase_period then first_order_value else 0 end) as first_order_value,
        -- new customers: a second purchase within the window (only windows closed by the as-of date)
        sum(case when is_first_purchase_period
            and cast({{ dbt.dateadd('day', var('new_customer_repeat_window_days'), 'first_purchase_date') }} as date)
                <= {{ liucun.as_of_date() }} then 1 else 0 end) as first_buyers_window_closed,
        sum(case when is_first_purchase_period
            and cast({{ dbt.dateadd('day', var('new_customer_repeat_window_days'), 'first_purchase_date') }} as date)
                <= {{ liucun.as_of_date() }}
            and second_purchase_date is not null
            and {{ dbt.datediff('first_purchase_date', 'second_purchase_date', 'day') }}
                <= {{ var('new_customer_repeat_window_days') }} then 1 else 0 end) as first_buyers_repeated,
        sum(case when stage = 'new' and purchases > 0 then 1 else 0 end) as new_customers_active,
        -- 成熟期: ARPU, old-customer retention, referrals
        sum(case when stage = 'mature' then revenue else 0 end) as mature_revenue,
        sum(case when previous_stage = 'mature' then 1 else 0 end) as mature_start,
        sum(case when previous_stage = 'mature' and purchases > 0 then 1 else 0 end) as mature_retained,
        sum(case when is_first_purchase_period and is_referred then 1 else 0 end) as first_buyers_referred,
        -- 休眠期 / 流失期: reactivation (召回) and win-back
        sum(case when previous_stage = 'dormant' then 1 else 0 end) as dormant_start,
        sum(case when previous_stage = 'dormant' and purchases > 0 then 1 else 0 end) as dormant_reactivated,
        sum(case when previous_stage = 'dormant' then revenue else 0 end) as dormant_revenue,
        sum(case when previous_stage = 'churned' then 1 else 0 end) as churned_start,
        sum(case when previous_stage = 'churned' and purchases > 0 then 1 else 0 end) as churned_won_back
    from lifecycle
    group by period_grain, period_start

),

metrics as (

    {%- set metrics = [
        ('prospect', 'customers', 'prospects', '1'),
        ('prospect', 'prospect_conversion_rate', 'prospects_converted', 'prospects_start'),
        ('new', 'customers', 'new_customers', '1'),
        ('new', 'first_order_value_avg', 'first_order_value', 'first_buyers'),
        ('new', 'repeat_purchase_rate', 'first_buyers_repeated', 'first_buyers_window_closed'),
        ('new', 'activity_rate', 'new_customers_active', 'new_customers'),
        ('growth', 'customers', 'growth_customers', '1'),
        ('mature', 'customers', 'mature_customers', '1'),
        ('mature', 'arpu', 'mature_revenue', 'mature_customers'),
        ('mature', 'retention_rate', 'mature_retained', 'mature_start'),
        ('mature', 'referral_share', 'first_buyers_referred', 'first_buyers'),
        ('dormant', 'customers', 'dormant_customers', '1'),
        ('dormant', 'reactivation_rate', 'dormant_reactivated', 'dormant_start'),
        ('dormant', 'arpu', 'dormant_revenue', 'dormant_start'),
        ('churned', 'customers', 'churned_customers', '1'),
        ('churned', 'winback_rate', 'churned_won_back', 'churned_start'),
    ] %}
    {%- for stage, metric, numerator, denominator in metrics %}
    select
        period_grain,
        period_start,
        '{{ stage }}' as stage,
        '{{ metric }}' as metric,
        cast({{ numerator }} as {{ liucun.type_double() }}) as numerator,
        cast({{ denominator }} as {{ liucun.type_double() }}) as denominator
    from measures
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

final as (

    select
        period_grain,
        period_start,
        stage,
        metric,
        numerator,
        denominator,
        numerator / nullif(denominator, 0) as value
    from metrics

)

select * from final
