-- One row per complete period, segment and base definition (var('retention_base_definitions')):
-- S (in the base at the end of the previous period), E (in the base at the end of this period),
-- N (first-ever activity this period), retained (in both), and the revenue behind them.
--   active_in_period: the base is the customers active in the period.
--   active_window:    the base is the customers active within var('active_window_days') days up
--                     to the period's last day.
{%- set bases = var('retention_base_definitions', ['active_in_period']) %}
{%- for b in bases %}
    {%- if b not in ['active_in_period', 'active_window'] %}
        {{ exceptions.raise_compiler_error("unknown retention base definition: " ~ b) }}
    {%- endif %}
{%- endfor %}
with customer_periods as (

    select * from {{ ref('fct_customer_periods') }}

),

segments as (

    select * from {{ ref('int_customer_segments') }}

),

in_base as (

    {%- for b in bases %}
    select
        customer_id,
        period_grain,
        period_start,
        period_end,
        '{{ b }}' as base_definition,
        is_new,
        revenue,
        {%- if b == 'active_in_period' %}
        is_active as in_end,
        was_active_previous_period as in_start,
        {%- else %}
        days_since_last_activity < {{ var('active_window_days') }} as in_end,
        coalesce(lag(days_since_last_activity < {{ var('active_window_days') }}) over (
            partition by customer_id order by period_start
        ), false) as in_start,
        {%- endif %}
        coalesce(lag(revenue) over (partition by customer_id order by period_start), 0) as previous_revenue
    from customer_periods
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

final as (

    select
        in_base.period_grain,
        in_base.period_start,
        in_base.period_end,
        true as is_complete,
        segments.segment_type,
        segments.segment_value,
        in_base.base_definition,
        cast(sum(case when in_base.in_start then 1 else 0 end) as {{ dbt.type_bigint() }}) as customers_start,
        cast(sum(case when in_base.in_end then 1 else 0 end) as {{ dbt.type_bigint() }}) as customers_end,
        cast(sum(case when in_base.in_end and in_base.is_new then 1 else 0 end) as {{ dbt.type_bigint() }})
            as customers_new,
        cast(sum(case when in_base.in_start and in_base.in_end then 1 else 0 end) as {{ dbt.type_bigint() }})
            as customers_retained,
        cast(sum(case when in_base.in_start then in_base.previous_revenue else 0 end) as decimal(38, 2))
            as revenue_start,
        cast(sum(case when in_base.in_end then in_base.revenue else 0 end) as decimal(38, 2)) as revenue_end,
        cast(sum(case when in_base.in_start then in_base.revenue else 0 end) as decimal(38, 2))
            as revenue_retained_net,
        cast(sum(case when in_base.in_start then least(in_base.revenue, in_base.previous_revenue) else 0 end)
            as decimal(38, 2)) as revenue_retained_gross
    from in_base
    inner join segments
        on in_base.customer_id = segments.customer_id
    group by
        in_base.period_grain, in_base.period_start, in_base.period_end,
        segments.segment_type, segments.segment_value, in_base.base_definition

)

select * from final
