-- One row per win-back campaign contact. Recall is measured the same way for both groups: a
-- qualifying purchase by the contact's customer in [launched_at, launched_at +
-- attribution_window_days) — the campaign launch, not the send, opens the window, because holdout
-- targets are never sent anything and a send-time window would start later for treated targets.
{%- set quality_days = var('recall_quality_days', 90) %}
{%- set rechurn_days = var('recall_rechurn_days', 180) %}
with contacts as (

    select * from {{ ref('int_recall_contacts_mapped') }}

),

orders as (

    select * from {{ ref('fct_orders') }}
    where is_qualifying
      and customer_id is not null

),

windowed as (

    select
        contacts.*,
        {{ dbt.dateadd('day', 'contacts.attribution_window_days', 'contacts.launched_at') }} as window_end_at
    from contacts

),

window_orders as (

    select
        windowed.contact_id,
        orders.order_id,
        orders.ordered_at,
        orders.net_amount,
        row_number() over (
            partition by windowed.contact_id order by orders.ordered_at, orders.order_id
        ) as order_rank
    from windowed
    inner join orders
        on orders.customer_id = windowed.customer_id
        and orders.ordered_at >= windowed.launched_at
        and orders.ordered_at < windowed.window_end_at

),

recalls as (

    select
        contact_id,
        count(*) as recall_orders,
        sum(net_amount) as recall_revenue,
        min(ordered_at) as first_recall_at,
        max(case when order_rank = 1 then order_id end) as first_recall_order_id
    from window_orders
    group by contact_id

),

after_recall as (

    select
        recalls.contact_id,
        sum(case when orders.ordered_at < {{ dbt.dateadd('day', quality_days, 'recalls.first_recall_at') }}
            then orders.net_amount else 0 end) as revenue_after_recall,
        max(orders.ordered_at) as last_purchase_at
    from recalls
    inner join windowed on recalls.contact_id = windowed.contact_id
    inner join orders
        on orders.customer_id = windowed.customer_id
        and orders.ordered_at >= recalls.first_recall_at
    group by recalls.contact_id

),

as_of as (

    select {{ liucun.as_of_date() }} as as_of_date

),

final as (

    select
        windowed.contact_id,
        windowed.campaign_id,
        windowed.campaign_name,
        windowed.channel,
        windowed.customer_id,
        windowed.identified_by,
        windowed.assigned_group,
        windowed.assigned_group = 'treatment' as is_treatment,
        windowed.launched_at,
        windowed.window_end_at,
        windowed.attribution_window_days,
        windowed.sent_at,
        coalesce(windowed.delivered, false) as is_reached,
        windowed.opened_at is not null as is_opened,
        windowed.value_tier,
        case
            when windowed.lookback_tickets >= {{ var('recall_heavy_service_tickets', 3) }} then 'heavy'
            else 'normal'
        end as service_demand,
        windowed.net_revenue_before,
        windowed.lookback_net_revenue,
        windowed.lookback_tickets,
        windowed.last_order_before_at,
        recalls.contact_id is not null as is_recalled,
        cast(coalesce(recalls.recall_orders, 0) as {{ dbt.type_bigint() }}) as recall_orders,
        recalls.first_recall_order_id,
        recalls.first_recall_at,
        cast(coalesce(recalls.recall_revenue, 0) as decimal(18, 2)) as recall_revenue,
        windowed.redeemed_order_id is not null or windowed.redeemed_at is not null as is_coupon_redeemed,
        windowed.redeemed_at,
        windowed.redeemed_order_id,
        cast(case when windowed.assigned_group = 'treatment' then windowed.cost_per_contact else 0 end
            as {{ liucun.type_double() }}) as contact_cost,
        cast(case when windowed.redeemed_order_id is not null or windowed.redeemed_at is not null
            then windowed.incentive_value else 0 end as decimal(18, 2)) as incentive_cost,
        -- quality of the recall: observed once var('recall_quality_days') have passed
        cast(case when recalls.first_recall_at is not null
            and {{ liucun.to_business_date(dbt.dateadd('day', quality_days, 'recalls.first_recall_at')) }} <= as_of.as_of_date
            then after_recall.revenue_after_recall
        end as decimal(18, 2)) as revenue_after_recall,
        -- churned again: no qualifying purchase in the var('recall_rechurn_days') before the as-of
        -- date since the recall; observed once that many days have passed since the recall
        case when recalls.first_recall_at is not null
            and {{ liucun.to_business_date(dbt.dateadd('day', rechurn_days, 'recalls.first_recall_at')) }} <= as_of.as_of_date
            then {{ liucun.to_business_date(dbt.dateadd('day', rechurn_days, 'after_recall.last_purchase_at')) }} <= as_of.as_of_date
        end as is_churned_again
    from windowed
    cross join as_of
    left join recalls on windowed.contact_id = recalls.contact_id
    left join after_recall on windowed.contact_id = after_recall.contact_id

)

select * from final
