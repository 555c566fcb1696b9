-- One row per customer of the identity graph (a component holding a CRM record or an order).
-- A daily build recomputes only the customers whose identity or records changed
-- (macros/incremental.sql).
-- depends_on: {{ ref('int_identifiers_clustered') }}
{{ liucun.customer_absorbing_config() }}
with id_map as (

    select * from {{ ref('int_identifiers_mapped_to_customers') }}
    {{- liucun.only_changed_customers() }}

),

observations as (

    select * from {{ ref('int_identifiers_observed') }}

),

crm as (

    select * from {{ ref('stg_crm__customers') }}

),

orders as (

    select * from {{ ref('int_orders_attributed') }}
    where customer_id is not null
    {{- liucun.only_changed_customers('and') }}

),

identifier_counts as (

    select
        customer_id,
        customer_key,
        max(case when node_key = customer_key then identifier_type end) as customer_key_type,
        count(*) as identifiers,
        sum(case when identifier_type = 'crm_id' then 1 else 0 end) as crm_ids,
        sum(case when identifier_type = 'phone' then 1 else 0 end) as phones,
        sum(case when identifier_type = 'email' then 1 else 0 end) as emails,
        sum(case when identifier_type = 'member_card' then 1 else 0 end) as member_cards,
        sum(case when identifier_type = 'wechat_unionid' then 1 else 0 end) as wechat_unionids,
        sum(case when identifier_type = 'wechat_openid' then 1 else 0 end) as wechat_openids,
        sum(case when identifier_type = 'device_id' then 1 else 0 end) as device_ids
    from id_map
    group by customer_id, customer_key

),

-- touchpoints: every record the customer was seen in, except outbound campaign sends, as one row
-- per customer, source and channel (the first and the last time seen through them)
touchpoints as (

    select
        id_map.customer_id,
        observations.source,
        observations.channel,
        min(observations.first_seen_at) as first_seen_at,
        max(observations.last_seen_at) as last_seen_at
    from observations
    inner join id_map
        on observations.node_key = id_map.node_key
    where observations.source <> 'campaign_contacts'
    group by id_map.customer_id, observations.source, observations.channel

),

seen as (

    select customer_id, min(first_seen_at) as first_seen_at, max(last_seen_at) as last_seen_at
    from touchpoints
    group by customer_id

),

first_touchpoints as (

    select customer_id, channel as first_touchpoint_channel
    from (
        select
            customer_id,
            channel,
            row_number() over (
                partition by customer_id order by first_seen_at, source, channel
            ) as rn
        from touchpoints
        where channel is not null and first_seen_at is not null
    ) as ranked
    where rn = 1

),

crm_records as (

    select id_map.customer_id, crm.*
    from crm
    inner join id_map
        on id_map.identifier_type = 'crm_id' and id_map.identifier_value = crm.crm_id

),

first_registrations as (

    select customer_id, crm_id, registration_channel, registered_at
    from (
        select
            customer_id,
            crm_id,
            registration_channel,
            registered_at,
            row_number() over (partition by customer_id order by registered_at, crm_id) as rn
        from crm_records
    ) as ranked
    where rn = 1

),

-- region and city tier from the most recently updated CRM record
latest_profiles as (

    select customer_id, region, city_tier
    from (
        select
            customer_id,
            region,
            city_tier,
            row_number() over (
                partition by customer_id
                order by coalesce(updated_at, registered_at) desc, crm_id
            ) as rn
        from crm_records
    ) as ranked
    where rn = 1

),

first_orders as (

    select customer_id, channel as first_order_channel
    from (
        select
            customer_id,
            channel,
            row_number() over (partition by customer_id order by ordered_at, order_id) as rn
        from orders
    ) as ranked
    where rn = 1

),

order_stats as (

    select
        customer_id,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        count(*) as orders,
        cast(sum(net_amount) as decimal(38, 2)) as net_revenue
    from orders
    group by customer_id

),

final as (

    select
        identifier_counts.customer_id,
        identifier_counts.customer_key,
        identifier_counts.customer_key_type,
        first_registrations.crm_id,
        cast(identifier_counts.identifiers as {{ dbt.type_bigint() }}) as identifiers,
        cast(identifier_counts.crm_ids as {{ dbt.type_bigint() }}) as crm_ids,
        cast(identifier_counts.phones as {{ dbt.type_bigint() }}) as phones,
        cast(identifier_counts.emails as {{ dbt.type_bigint() }}) as emails,
        cast(identifier_counts.member_cards as {{ dbt.type_bigint() }}) as member_cards,
        cast(identifier_counts.wechat_unionids as {{ dbt.type_bigint() }}) as wechat_unionids,
        cast(identifier_counts.wechat_openids as {{ dbt.type_bigint() }}) as wechat_openids,
        cast(identifier_counts.device_ids as {{ dbt.type_bigint() }}) as device_ids,
        seen.first_seen_at,
        seen.last_seen_at,
        coalesce(first_registrations.registration_channel, first_touchpoints.first_touchpoint_channel)
            as acquisition_channel,
        case
            when first_registrations.registration_channel is not null then 'crm_registration'
            when first_touchpoints.first_touchpoint_channel is not null then 'first_touchpoint'
        end as acquisition_channel_basis,
        first_registrations.registered_at,
        latest_profiles.region,
        latest_profiles.city_tier,
        first_orders.first_order_channel,
        order_stats.first_order_at,
        order_stats.last_order_at,
        cast(coalesce(order_stats.orders, 0) as {{ dbt.type_bigint() }}) as orders,
        coalesce(order_stats.net_revenue, 0) as net_revenue
    from identifier_counts
    left join seen on identifier_counts.customer_id = seen.customer_id
    left join first_touchpoints on identifier_counts.customer_id = first_touchpoints.customer_id
    left join first_registrations on identifier_counts.customer_id = first_registrations.customer_id
    left join latest_profiles on identifier_counts.customer_id = latest_profiles.customer_id
    left join first_orders on identifier_counts.customer_id = first_orders.customer_id
    left join order_stats on identifier_counts.customer_id = order_stats.customer_id

)

select * from final
