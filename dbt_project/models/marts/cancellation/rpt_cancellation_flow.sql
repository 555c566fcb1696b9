-- One row per business-local month of the session start, reason category and offer type: the
-- cancellation-flow funnel (sessions, offers shown / accepted, deflected, saved, lost deflections)
-- with rates and the saved revenue. Every session is evaluated against billing; see the
-- 'cancellation_definitions' doc block.
{%- set save_days = var('cancellation_save_window_days', 30) %}
{%- set horizon_days = var('cancellation_saved_revenue_horizon_days', 365) %}
with sessions as (

    select * from {{ ref('stg_cancellation__sessions') }}

),

memberships as (

    select * from {{ ref('stg_billing__memberships') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}
    where status = 'paid'

),

as_of as (

    select {{ liucun.as_of_date() }} as as_of_date

),

timed as (

    select
        sessions.session_id,
        sessions.membership_id,
        sessions.started_at,
        coalesce(sessions.ended_at, sessions.started_at) as session_end_at,
        coalesce(sessions.reason_category, 'unknown') as reason_category,
        coalesce(sessions.offer_type, 'none') as offer_type,
        coalesce(sessions.offer_shown, false) as is_offer_shown,
        coalesce(sessions.offer_accepted, false) as is_offer_accepted,
        sessions.outcome,
        lead(sessions.started_at) over (
            partition by sessions.membership_id order by sessions.started_at, sessions.session_id
        ) as next_session_at
    from sessions

),

windowed as (

    select
        timed.*,
        {{ dbt.dateadd('day', save_days, 'timed.session_end_at') }} as save_window_end_at,
        {{ dbt.dateadd('day', horizon_days, 'timed.session_end_at') }} as horizon_end_at
    from timed

),

session_billing as (

    select
        windowed.session_id,
        max(case when invoices.attempted_at > windowed.save_window_end_at then 1 else 0 end)
            as has_paid_invoice_after_window,
        sum(case
            when invoices.attempted_at <= windowed.horizon_end_at
                and (windowed.next_session_at is null or invoices.attempted_at < windowed.next_session_at)
            then invoices.amount else 0 end) as paid_in_horizon
    from windowed
    inner join invoices
        on invoices.membership_id = windowed.membership_id
        and invoices.attempted_at > windowed.session_end_at
    group by windowed.session_id

),

evaluated as (

    select
        windowed.*,
        cast({{ dbt.date_trunc('month', liucun.to_business_date('windowed.started_at')) }} as date) as month_start,
        windowed.outcome = 'cancelled' as is_cancelled,
        windowed.outcome = 'abandoned' as is_abandoned,
        windowed.outcome = 'deflected' as is_deflected,
        {{ liucun.to_business_date('windowed.save_window_end_at') }} <= as_of.as_of_date as is_matured,
        memberships.ended_at is not null
            and memberships.ended_at > windowed.session_end_at
            and memberships.ended_at <= windowed.save_window_end_at
            and memberships.end_reason = 'cancelled' as is_cancelled_in_window,
        (memberships.ended_at is null or memberships.ended_at > windowed.save_window_end_at)
            and (memberships.ended_at is null or coalesce(session_billing.has_paid_invoice_after_window, 0) = 1)
            as is_active_and_paying_after_window,
        coalesce(session_billing.paid_in_horizon, 0) as paid_in_horizon
    from windowed
    cross join as_of
    left join memberships on windowed.membership_id = memberships.membership_id
    left join session_billing on windowed.session_id = session_billing.session_id

),

flagged as (

    select
        month_start,
        reason_category,
        offer_type,
        is_offer_shown,
        is_offer_accepted,
        is_cancelled,
        is_abandoned,
        is_deflected,
        is_matured,
        is_deflected and is_cancelled_in_window as is_lost_deflection,
        is_deflected and is_matured and is_active_and_paying_after_window as is_saved,
        paid_in_horizon
    from evaluated

),

final as (

    select
        month_start,
        reason_category,
        offer_type,
        cast(count(*) as {{ dbt.type_bigint() }}) as sessions,
        cast(sum(case when is_matured then 1 else 0 end) as {{ dbt.type_bigint() }}) as sessions_matured,
        cast(sum(case when is_offer_shown then 1 else 0 end) as {{ dbt.type_bigint() }}) as offers_shown,
        cast(sum(case when is_offer_accepted then 1 else 0 end) as {{ dbt.type_bigint() }}) as offers_accepted,
        cast(sum(case when is_cancelled then 1 else 0 end) as {{ dbt.type_bigint() }}) as sessions_cancelled,
        cast(sum(case when is_abandoned then 1 else 0 end) as {{ dbt.type_bigint() }}) as sessions_abandoned,
        cast(sum(case when is_deflected then 1 else 0 end) as {{ dbt.type_bigint() }}) as deflected,
        cast(sum(case when is_deflected and is_matured then 1 else 0 end) as {{ dbt.type_bigint() }}) as deflected_matured,
        cast(sum(case when is_saved then 1 else 0 end) as {{ dbt.type_bigint() }}) as saved,
        cast(sum(case when is_lost_deflection then 1 else 0 end) as {{ dbt.type_bigint() }}) as lost_deflections,
        {{ liucun.ratio('sum(case when is_deflected then 1 else 0 end)', 'count(*)') }} as deflect_rate,
        {{ liucun.ratio('sum(case when is_saved then 1 else 0 end)', 'sum(case when is_matured then 1 else 0 end)') }} as save_rate,
        {{ liucun.ratio('sum(case when is_offer_accepted then 1 else 0 end)', 'sum(case when is_offer_shown then 1 else 0 end)') }} as offer_acceptance_rate,
        cast(sum(case when is_saved then paid_in_horizon else 0 end) as decimal(18, 2)) as saved_revenue
    from flagged
    group by month_start, reason_category, offer_type

)

select * from final
