-- One row per churn (doc 'churn_definitions'). A customer's life after a qualifying purchase ends
-- at the first churn signal before their next purchase: a completed cancellation (a cancellation
-- session that ended 'cancelled', or a membership ended for a reason in
-- var('lifecycle_cancellation_end_reasons')), a membership ended for non-payment, or inactivity
-- (var('lifecycle_churned_days') without a purchase, dated on the day the threshold is crossed, as
-- in fct_customer_lifecycle). A purchase after a churn reactivates the customer, who may churn again.
-- Voluntary unless the membership ended for non-payment or an unrecovered payment failure fell in
-- the life's last stretch (last purchase .. churn date); a cancellation during dunning is voluntary.
-- Churn type from seed churn_reason_types: the stated cancellation reason, else non-payment, else a
-- preceding experience touchpoint, else unknown; type_basis says which.
{%- set churned_days = var('lifecycle_churned_days') %}
{%- set lookback = var('churn_type_lookback_days') %}
with id_map as (

    select identifier_value as crm_id, customer_id
    from {{ ref('int_identifiers_mapped_to_customers') }}
    where identifier_type = 'crm_id'

),

purchases as (

    select distinct customer_id, order_date
    from {{ ref('int_orders_attributed') }}
    where customer_id is not null
      and net_amount > {{ var('min_qualifying_amount') }}

),

lives as (

    select
        customer_id,
        order_date as last_purchase_date,
        lead(order_date) over (partition by customer_id order by order_date) as next_purchase_date
    from purchases

),

sessions as (

    select * from {{ ref('stg_cancellation__sessions') }}

),

memberships as (

    select * from {{ ref('stg_billing__memberships') }}

),

-- the latest completed cancellation session of each membership (its stated reason)
membership_sessions as (

    select membership_id, session_id, reason_category
    from (
        select
            membership_id,
            session_id,
            reason_category,
            row_number() over (
                partition by membership_id order by coalesce(ended_at, started_at) desc, session_id desc
            ) as rn
        from sessions
        where outcome = 'cancelled' and membership_id is not null
    ) as ranked
    where rn = 1

),

signals as (

    select
        id_map.customer_id,
        {{ liucun.to_business_date('coalesce(sessions.ended_at, sessions.started_at)') }} as signal_date,
        'cancellation_completed' as detection,
        1 as priority,
        sessions.membership_id,
        sessions.session_id,
        sessions.reason_category
    from sessions
    inner join id_map on sessions.crm_id = id_map.crm_id
    where sessions.outcome = 'cancelled'
    union all
    select
        id_map.customer_id,
        {{ liucun.to_business_date('memberships.ended_at') }},
        case when memberships.end_reason = 'non_payment' then 'membership_ended_non_payment'
            else 'cancellation_completed' end,
        case when memberships.end_reason = 'non_payment' then 2 else 1 end,
        memberships.membership_id,
        membership_sessions.session_id,
        membership_sessions.reason_category
    from memberships
    inner join id_map on memberships.crm_id = id_map.crm_id
    left join membership_sessions on memberships.membership_id = membership_sessions.membership_id
    where memberships.ended_at is not null
      and (memberships.end_reason = 'non_payment'
        or memberships.end_reason in (
            {%- for r in var('lifecycle_cancellation_end_reasons', ['cancelled']) -%}
            '{{ r }}'{% if not loop.last %}, {% endif %}
            {%- endfor -%}))

),

-- candidate churns of each life: signals before the next purchase, and the inactivity crossing
candidates as (

    select
        lives.customer_id,
        lives.last_purchase_date,
        lives.next_purchase_date,
        signals.signal_date as churn_date,
        signals.detection,
        signals.priority,
        signals.membership_id,
        signals.session_id,
        signals.reason_category
    from lives
    inner join signals
        on lives.customer_id = signals.customer_id
        and signals.signal_date >= lives.last_purchase_date
        and (lives.next_purchase_date is null or signals.signal_date < lives.next_purchase_date)
    where signals.signal_date <= {{ liucun.as_of_date() }}
    union all
    select
        customer_id,
        last_purchase_date,
        next_purchase_date,
        cast({{ dbt.dateadd('day', churned_days, 'last_purchase_date') }} as date),
        'inactivity',
        3,
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }})
    from lives
    where cast({{ dbt.dateadd('day', churned_days, 'last_purchase_date') }} as date) <= {{ liucun.as_of_date() }}
      and (next_purchase_date is null
        or next_purchase_date > cast({{ dbt.dateadd('day', churned_days, 'last_purchase_date') }} as date))

),

churns as (

    select *
    from (
        select
            candidates.*,
            row_number() over (
                partition by customer_id, last_purchase_date
                order by churn_date, priority, membership_id, session_id
            ) as rn
        from candidates
    ) as ranked
    where rn = 1

),

-- billing periods with a failed attempt and no paid attempt: never recovered
unrecovered_failures as (

    select
        id_map.customer_id,
        {{ liucun.to_business_date('max(invoices.attempted_at)') }} as failed_on
    from {{ ref('stg_billing__invoices') }} as invoices
    inner join id_map on invoices.crm_id = id_map.crm_id
    group by id_map.customer_id, invoices.membership_id, invoices.billing_period_start
    having sum(case when invoices.status = 'failed' then 1 else 0 end) > 0
       and sum(case when invoices.status = 'paid' then 1 else 0 end) = 0

),

failure_flags as (

    select distinct churns.customer_id, churns.last_purchase_date
    from churns
    inner join unrecovered_failures
        on churns.customer_id = unrecovered_failures.customer_id
        and unrecovered_failures.failed_on >= churns.last_purchase_date
        and unrecovered_failures.failed_on <= churns.churn_date

),

-- the latest experience touchpoint from the lookback before the last purchase to the churn date
experiences as (

    select customer_id, last_purchase_date, driver
    from (
        select
            churns.customer_id,
            churns.last_purchase_date,
            touchpoints.driver,
            row_number() over (
                partition by churns.customer_id, churns.last_purchase_date
                order by touchpoints.touchpoint_date desc, touchpoints.driver
            ) as rn
        from churns
        inner join {{ ref('int_churn_touchpoints') }} as touchpoints
            on churns.customer_id = touchpoints.customer_id
            and touchpoints.is_experience
            and touchpoints.touchpoint_date >= cast({{ dbt.dateadd('day', -lookback, 'churns.last_purchase_date') }} as date)
            and touchpoints.touchpoint_date <= churns.churn_date
    ) as ranked
    where rn = 1

),

types as (

    select * from {{ ref('churn_reason_types') }}

),

classified as (

    select
        churns.*,
        failure_flags.customer_id is not null as had_unrecovered_payment_failure,
        experiences.driver as experience_driver,
        stated.churn_type as stated_type,
        stated.is_influenceable as stated_influenceable,
        case
            when churns.detection = 'membership_ended_non_payment' then 'involuntary'
            when churns.detection = 'inactivity' and failure_flags.customer_id is not null then 'involuntary'
            else 'voluntary'
        end as voluntariness
    from churns
    left join failure_flags
        on churns.customer_id = failure_flags.customer_id
        and churns.last_purchase_date = failure_flags.last_purchase_date
    left join experiences
        on churns.customer_id = experiences.customer_id
        and churns.last_purchase_date = experiences.last_purchase_date
    left join types as stated
        on stated.reason_source = 'cancellation_session'
        and churns.reason_category = stated.reason_category

),

based as (

    select
        *,
        case
            when stated_type is not null and stated_type <> 'unknown' then 'stated_reason'
            when voluntariness = 'involuntary' then 'non_payment'
            when experience_driver is not null then 'preceding_experience'
            else 'no_evidence'
        end as type_basis
    from classified

),

final as (

    select
        cast({{ dbt.hash("based.customer_id || '|' || cast(based.churn_date as " ~ dbt.type_string() ~ ")") }}
            as {{ dbt.type_string() }}) as churn_id,
        based.customer_id,
        cast(based.churn_date as date) as churn_date,
        cast(based.last_purchase_date as date) as last_purchase_date,
        cast(based.detection as {{ dbt.type_string() }}) as detection,
        cast(based.voluntariness as {{ dbt.type_string() }}) as voluntariness,
        based.had_unrecovered_payment_failure,
        based.membership_id,
        based.session_id as cancellation_session_id,
        based.reason_category,
        cast(coalesce(case based.type_basis
            when 'stated_reason' then based.stated_type
            else inferred.churn_type
        end, 'unknown') as {{ dbt.type_string() }}) as churn_type,
        case based.type_basis
            when 'stated_reason' then based.stated_influenceable
            else inferred.is_influenceable
        end as is_influenceable,
        cast(based.type_basis as {{ dbt.type_string() }}) as type_basis,
        based.experience_driver,
        cast(based.next_purchase_date as date) as reactivated_on
    from based
    left join types as inferred
        on inferred.reason_source = 'inferred'
        and inferred.reason_category = '__' || based.type_basis

)

select * from final
