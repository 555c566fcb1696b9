-- One row per win-back campaign contact (treatment or holdout) with its campaign, the customer it
-- maps to (crm_id first, then the phone hash or WeChat unionid the channel addressed) and what the
-- customer looked like at the campaign launch: lifetime and lookback net revenue, value tier
-- (var('value_tier_thresholds') on lifetime revenue before launch) and service tickets in the
-- lookback (var('recall_service_lookback_days')). Nothing after the launch is used here.
{%- set tiers = var('value_tier_thresholds', {'high': 2000, 'medium': 500}) %}
{%- set lookback = var('recall_service_lookback_days', 365) %}
with contacts as (

    select * from {{ ref('stg_campaigns__contacts') }}

),

campaigns as (

    select * from {{ ref('stg_campaigns__campaigns') }}

),

id_map as (

    select * from {{ ref('int_identifiers_mapped_to_customers') }}

),

orders as (

    select * from {{ ref('int_orders_attributed') }}
    where customer_id is not null
      and net_amount > {{ var('min_qualifying_amount') }}

),

tickets as (

    select * from {{ ref('stg_service__tickets') }}

),

mapped as (

    select
        contacts.contact_id,
        contacts.campaign_id,
        contacts.assigned_group,
        contacts.sent_at,
        contacts.delivered,
        contacts.opened_at,
        contacts.coupon_code,
        contacts.redeemed_at,
        contacts.redeemed_order_id,
        {{ liucun.customer_id_from(['crm_id', 'phone', 'wechat_unionid']) }} as customer_id,
        case
            when by_crm.customer_id is not null then 'crm_id'
            when by_phone.customer_id is not null then 'phone'
            when by_unionid.customer_id is not null then 'wechat_unionid'
        end as identified_by
    from contacts
    {{ liucun.customer_joins('contacts', 'id_map', ['crm_id', 'phone', 'wechat_unionid']) }}

),

with_campaign as (

    select
        mapped.*,
        campaigns.campaign_name,
        campaigns.channel,
        campaigns.launched_at,
        campaigns.attribution_window_days,
        campaigns.cost_per_contact,
        campaigns.incentive_value,
        {{ dbt.dateadd('day', -lookback, 'campaigns.launched_at') }} as lookback_start_at
    from mapped
    inner join campaigns on mapped.campaign_id = campaigns.campaign_id

),

past_orders as (

    select
        with_campaign.contact_id,
        sum(orders.net_amount) as net_revenue_before,
        sum(case when orders.ordered_at >= with_campaign.lookback_start_at
            then orders.net_amount else 0 end) as lookback_net_revenue,
        max(orders.ordered_at) as last_order_before_at
    from with_campaign
    inner join orders
        on orders.customer_id = with_campaign.customer_id
        and orders.ordered_at < with_campaign.launched_at
    group by with_campaign.contact_id

),

tickets_mapped as (

    select
        tickets.ticket_id,
        tickets.opened_at,
        {{ liucun.customer_id_from(['crm_id', 'phone']) }} as customer_id
    from tickets
    {{ liucun.customer_joins('tickets', 'id_map', ['crm_id', 'phone']) }}

),

past_tickets as (

    select
        with_campaign.contact_id,
        count(*) as lookback_tickets
    from with_campaign
    inner join tickets_mapped
        on tickets_mapped.customer_id = with_campaign.customer_id
        and tickets_mapped.opened_at >= with_campaign.lookback_start_at
        and tickets_mapped.opened_at < with_campaign.launched_at
    group by with_campaign.contact_id

),

final as (

    select
        with_campaign.contact_id,
        with_campaign.campaign_id,
        with_campaign.campaign_name,
        with_campaign.channel,
        with_campaign.launched_at,
        with_campaign.attribution_window_days,
        with_campaign.cost_per_contact,
        with_campaign.incentive_value,
        with_campaign.customer_id,
        with_campaign.identified_by,
        with_campaign.assigned_group,
        with_campaign.sent_at,
        with_campaign.delivered,
        with_campaign.opened_at,
        with_campaign.coupon_code,
        with_campaign.redeemed_at,
        with_campaign.redeemed_order_id,
        cast(coalesce(past_orders.net_revenue_before, 0) as decimal(18, 2)) as net_revenue_before,
        cast(coalesce(past_orders.lookback_net_revenue, 0) as decimal(18, 2)) as lookback_net_revenue,
        past_orders.last_order_before_at,
        cast(coalesce(past_tickets.lookback_tickets, 0) as {{ dbt.type_bigint() }}) as lookback_tickets,
        case
            when with_campaign.customer_id is null then 'unknown'
            when coalesce(past_orders.net_revenue_before, 0) >= {{ tiers['high'] }} then 'high'
            when coalesce(past_orders.net_revenue_before, 0) >= {{ tiers['medium'] }} then 'medium'
            else 'low'
        end as value_tier
    from with_campaign
    left join past_orders on with_campaign.contact_id = past_orders.contact_id
    left join past_tickets on with_campaign.contact_id = past_tickets.contact_id

)

select * from final
