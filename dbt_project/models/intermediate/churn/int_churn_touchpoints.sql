-- One row per customer touchpoint that may drive churn (doc 'churn_definitions'): the driver, its
-- business-local date and whether it counts as an experience for churn typing
-- (var('churn_experience_drivers')). Sources: service tickets (driver 'ticket_<category>', and
-- 'low_satisfaction' when rated at or below var('churn_low_satisfaction_max_score')), surveys (CSAT
-- -> low_satisfaction, NPS at or below var('churn_nps_detractor_max_score') -> nps_detractor),
-- orders (delivery_delay: delivered after the promised date, dated at delivery; return_refund:
-- returned or refunded, dated at the order since no return date is exported), billing
-- (payment_failure: a failed attempt) and tracked events (app_error). Touchpoints that map to no
-- customer are left out. Empty when the sources have no such rows.
{%- set experience = var('churn_experience_drivers', []) %}
with id_map as (

    select identifier_type, identifier_value, customer_id
    from {{ ref('int_identifiers_mapped_to_customers') }}

),

tickets as (

    select
        {{ liucun.customer_id_from(['crm_id', 'phone']) }} as customer_id,
        tickets.category,
        {{ liucun.to_business_date('tickets.opened_at') }} as opened_on,
        {{ liucun.to_business_date('coalesce(tickets.resolved_at, tickets.opened_at)') }} as rated_on,
        tickets.satisfaction_score
    from {{ ref('stg_service__tickets') }} as tickets
    {{ liucun.customer_joins('tickets', 'id_map', ['crm_id', 'phone']) }}

),

surveys as (

    select
        id_map.customer_id,
        surveys.survey_type,
        surveys.score,
        {{ liucun.to_business_date('surveys.responded_at') }} as responded_on
    from {{ ref('stg_surveys__responses') }} as surveys
    inner join id_map
        on id_map.identifier_type = 'crm_id' and id_map.identifier_value = surveys.crm_id

),

orders as (

    select
        attributed.customer_id,
        attributed.order_date,
        attributed.is_returned,
        attributed.refund_amount,
        unioned.promised_delivery_date,
        -- the business date only where the delivery can be late: a delivery before the promised
        -- date's midnight UTC is on or before that date in every time zone (no offset is a day),
        -- so the other rows skip the time-zone conversion (and are not delays either way)
        case
            when unioned.delivered_at >= cast(unioned.promised_delivery_date as {{ dbt.type_timestamp() }})
                then {{ liucun.to_business_date('unioned.delivered_at') }}
        end as delivered_on
    from {{ ref('int_orders_attributed') }} as attributed
    inner join {{ ref('int_orders_unioned') }} as unioned on attributed.order_id = unioned.order_id
    where attributed.customer_id is not null

),

invoices as (

    select
        id_map.customer_id,
        {{ liucun.to_business_date('invoices.attempted_at') }} as attempted_on
    from {{ ref('stg_billing__invoices') }} as invoices
    inner join id_map
        on id_map.identifier_type = 'crm_id' and id_map.identifier_value = invoices.crm_id
    where invoices.status = 'failed'

),

-- an event belongs to the customer of any of its identifiers (as in int_customer_activity_periods)
app_errors as (

    select
        {{ liucun.event_customer_id() }} as customer_id,
        {{ liucun.to_business_date('events.event_at') }} as event_on
    from {{ ref('stg_tracking__events') }} as events
    {{ liucun.event_customer_joins('events', 'id_map') }}
    where events.event_type = 'app_error'

),

unioned as (

    select customer_id, opened_on as touchpoint_date, 'ticket_' || category as driver, 'ticket' as driver_source
    from tickets
    where category is not null
    union all
    select customer_id, rated_on, 'low_satisfaction', 'ticket'
    from tickets
    where satisfaction_score <= {{ var('churn_low_satisfaction_max_score') }}
    union all
    select customer_id, responded_on, 'low_satisfaction', 'survey'
    from surveys
    where survey_type = 'csat' and score <= {{ var('churn_low_satisfaction_max_score') }}
    union all
    select customer_id, responded_on, 'nps_detractor', 'survey'
    from surveys
    where survey_type = 'nps' and score <= {{ var('churn_nps_detractor_max_score') }}
    union all
    select customer_id, delivered_on, 'delivery_delay', 'order'
    from orders
    where delivered_on > promised_delivery_date
    union all
    select customer_id, order_date, 'return_refund', 'order'
    from orders
    where is_returned or refund_amount > 0
    union all
    select customer_id, attempted_on, 'payment_failure', 'billing'
    from invoices
    union all
    select customer_id, event_on, 'app_error', 'event'
    from app_errors

),

final as (

    select
        customer_id,
        cast(touchpoint_date as date) as touchpoint_date,
        cast(driver as {{ dbt.type_string() }}) as driver,
        cast(driver_source as {{ dbt.type_string() }}) as driver_source,
        {% if experience | length > 0 -%}
        driver in ({% for d in experience %}'{{ d }}'{% if not loop.last %}, {% endif %}{% endfor %})
        {%- else -%}
        false
        {%- endif %} as is_experience,
        cast(count(*) as {{ dbt.type_bigint() }}) as touchpoints
    from unioned
    where customer_id is not null and touchpoint_date is not null
    group by customer_id, touchpoint_date, driver, driver_source

)

select * from final
