-- One row per customer, published grain (var('period_grains'): day, week, month; business
-- timezone) and period in which they were active: a purchase with net amount above var('min_qualifying_amount'), or a touchpoint event of
-- a type listed in var('activity_event_types') (default none) mapped to the customer through the
-- identity graph.
{%- set event_types = var('activity_event_types', []) %}
with orders as (

    select * from {{ ref('int_orders_attributed') }}

),

events as (

    select * from {{ ref('stg_tracking__events') }}

),

id_map as (

    select * from {{ ref('int_identifiers_mapped_to_customers') }}

),

purchases as (

    select
        customer_id,
        order_date as activity_date,
        1 as orders,
        net_amount as revenue,
        0 as events
    from orders
    where customer_id is not null
      and net_amount > {{ var('min_qualifying_amount') }}

),

-- an event belongs to the customer of any of its identifiers (all in one customer: the event links them)
qualifying_events as (

    select
        {{ liucun.event_customer_id() }} as customer_id,
        {{ liucun.to_business_date('events.event_at') }} as activity_date,
        0 as orders,
        cast(0 as decimal(18, 2)) as revenue,
        1 as events
    from events
    {{ liucun.event_customer_joins('events', 'id_map') }}
    where {% if event_types | length > 0 -%}
        events.event_type in ({% for t in event_types %}'{{ t }}'{% if not loop.last %}, {% endif %}{% endfor %})
    {%- else -%}
        1 = 0
    {%- endif %}

),

activity as (

    select * from purchases
    union all
    select * from qualifying_events
    where customer_id is not null

),

-- one row per customer and active day; each grain's periods roll these days up
days as (

    select
        customer_id,
        activity_date,
        sum(orders) as orders,
        sum(revenue) as revenue,
        sum(events) as events
    from activity
    group by customer_id, activity_date

),

final as (

    {%- for grain in liucun.period_grains() %}
    select
        customer_id,
        '{{ grain }}' as period_grain,
        {{ liucun.period_start('activity_date', grain) }} as period_start,
        cast(sum(orders) as {{ dbt.type_bigint() }}) as orders,
        cast(sum(revenue) as decimal(18, 2)) as revenue,
        cast(sum(events) as {{ dbt.type_bigint() }}) as events,
        min(activity_date) as first_activity_date,
        max(activity_date) as last_activity_date,
        min(case when orders > 0 then activity_date end) as first_purchase_date,
        max(case when orders > 0 then activity_date end) as last_purchase_date
    from days
    group by customer_id, {{ liucun.period_start('activity_date', grain) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

)

select * from final
