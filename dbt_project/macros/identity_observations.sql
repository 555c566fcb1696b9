{#- The rows of int_identifiers_observed, computed from every staged record, or with `new_loads`
    (a relation of load ids) from the records of those loads only: what they add to the graph. -#}
{% macro identifier_observation_rows(new_loads=none) %}
with crm as (

    select * from {{ ref('stg_crm__customers') }}{{ liucun.only_new_loads(new_loads) }}

),

orders as (

    select * from {{ ref('int_orders_unioned') }}{{ liucun.only_new_loads(new_loads) }}

),

events as (

    select * from {{ ref('stg_tracking__events') }}{{ liucun.only_new_loads(new_loads) }}

),

tickets as (

    select * from {{ ref('stg_service__tickets') }}{{ liucun.only_new_loads(new_loads) }}

),

campaign_contacts as (

    select * from {{ ref('stg_campaigns__contacts') }}{{ liucun.only_new_loads(new_loads) }}

),

survey_responses as (

    select * from {{ ref('stg_surveys__responses') }}{{ liucun.only_new_loads(new_loads) }}

),

memberships as (

    select * from {{ ref('stg_billing__memberships') }}{{ liucun.only_new_loads(new_loads) }}

),

cancellation_sessions as (

    select * from {{ ref('stg_cancellation__sessions') }}{{ liucun.only_new_loads(new_loads) }}

),

records as (

    select
        'crm' as source,
        {{ dbt.concat(["'crm:'", "crm_id"]) }} as record_ref,
        registration_channel as channel,
        registered_at as observed_at,
        crm_id,
        phone_hash,
        email_hash,
        member_card,
        cast(null as {{ dbt.type_string() }}) as wechat_unionid,
        cast(null as {{ dbt.type_string() }}) as wechat_openid,
        cast(null as {{ dbt.type_string() }}) as device_id
    from crm

    union all

    select
        'orders',
        {{ dbt.concat(["'order:'", "order_id"]) }},
        channel,
        ordered_at,
        crm_id,
        phone_hash,
        null,
        member_card,
        wechat_unionid,
        null,
        null
    from orders

    union all

    select
        'events',
        case when event_type = 'checkout'
            then {{ dbt.concat(["'order:'", liucun.json_text('properties', 'order_id')]) }} end,
        channel,
        event_at,
        crm_id,
        null,
        null,
        null,
        wechat_unionid,
        wechat_openid,
        device_id
    from events

    union all

    select
        'tickets',
        case when order_id is not null then {{ dbt.concat(["'order:'", "order_id"]) }} end,
        contact_channel,
        opened_at,
        crm_id,
        phone_hash,
        null,
        null,
        null,
        null,
        null
    from tickets

    union all

    select
        'campaign_contacts',
        case when redeemed_order_id is not null
            then {{ dbt.concat(["'order:'", "redeemed_order_id"]) }} end,
        null,
        sent_at,
        crm_id,
        phone_hash,
        null,
        null,
        wechat_unionid,
        null,
        null
    from campaign_contacts

    union all

    select
        'survey_responses',
        case when order_id is not null then {{ dbt.concat(["'order:'", "order_id"]) }} end,
        null,
        responded_at,
        crm_id,
        null,
        null,
        null,
        null,
        null,
        null
    from survey_responses

    union all

    select 'memberships', null, null, started_at, crm_id, null, null, null, null, null, null
    from memberships

    union all

    select 'cancellation_sessions', null, null, started_at, crm_id, null, null, null, null, null, null
    from cancellation_sessions

),

cleaned as (

    select
        source,
        record_ref,
        channel,
        observed_at,
        nullif(trim(crm_id), '') as crm_id,
        nullif(trim(phone_hash), '') as phone_hash,
        nullif(trim(email_hash), '') as email_hash,
        nullif(trim(member_card), '') as member_card,
        nullif(trim(wechat_unionid), '') as wechat_unionid,
        nullif(trim(wechat_openid), '') as wechat_openid,
        nullif(trim(device_id), '') as device_id
    from records

),

grouped as (

    select
        source,
        record_ref,
        channel,
        crm_id,
        phone_hash,
        email_hash,
        member_card,
        wechat_unionid,
        wechat_openid,
        device_id,
        min(observed_at) as first_seen_at,
        max(observed_at) as last_seen_at,
        count(*) as records
    from cleaned
    where coalesce(crm_id, phone_hash, email_hash, member_card, wechat_unionid, wechat_openid,
                   device_id) is not null
    group by
        source, record_ref, channel, crm_id, phone_hash, email_hash, member_card,
        wechat_unionid, wechat_openid, device_id

),

keyed as (

    select
        coalesce(
            record_ref,
            {{ dbt.concat(["source", "':'", dbt.hash(dbt.concat([
                "coalesce(crm_id, '')", "'|'", "coalesce(phone_hash, '')", "'|'",
                "coalesce(email_hash, '')", "'|'", "coalesce(member_card, '')", "'|'",
                "coalesce(wechat_unionid, '')", "'|'", "coalesce(wechat_openid, '')", "'|'",
                "coalesce(device_id, '')"]))]) }}
        ) as record_key,
        grouped.*
    from grouped

),

unpivoted as (

    select source, record_key, channel, 'crm_id' as identifier_type, crm_id as identifier_value,
        first_seen_at, last_seen_at, records
    from keyed where crm_id is not null
    union all
    select source, record_key, channel, 'phone', phone_hash, first_seen_at, last_seen_at, records
    from keyed where phone_hash is not null
    union all
    select source, record_key, channel, 'email', email_hash, first_seen_at, last_seen_at, records
    from keyed where email_hash is not null
    union all
    select source, record_key, channel, 'member_card', member_card, first_seen_at, last_seen_at, records
    from keyed where member_card is not null
    union all
    select source, record_key, channel, 'wechat_unionid', wechat_unionid, first_seen_at, last_seen_at,
        records
    from keyed where wechat_unionid is not null
    union all
    select source, record_key, channel, 'wechat_openid', wechat_openid, first_seen_at, last_seen_at,
        records
    from keyed where wechat_openid is not null
    union all
    select source, record_key, channel, 'device_id', device_id, first_seen_at, last_seen_at, records
    from keyed where device_id is not null

),

final as (

    select
        record_key,
        source,
        channel,
        identifier_type,
        identifier_value,
        {{ dbt.concat(["identifier_type", "':'", "identifier_value"]) }} as node_key,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        cast(sum(records) as {{ dbt.type_bigint() }}) as records
    from unpivoted
    group by record_key, source, channel, identifier_type, identifier_value

)

select * from final
{% endmacro %}

