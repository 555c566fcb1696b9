-- First, CRM-anchored identity: each CRM record is a customer; member cards and phone hashes
-- that belong to exactly one CRM record point to it. The identity-graph issue replaces this.
with customers as (

    select * from {{ ref('stg_crm__customers') }}

),

identifiers as (

    select 'crm_id' as identifier_type, crm_id as identifier_value, crm_id from customers
    union all
    select 'member_card', member_card, crm_id from customers where member_card is not null
    union all
    select 'phone', phone_hash, crm_id from customers where phone_hash is not null

),

unambiguous as (

    select identifier_type, identifier_value, min(crm_id) as crm_id
    from identifiers
    group by identifier_type, identifier_value
    having count(distinct crm_id) = 1

),

final as (

    select
        identifier_type,
        identifier_value,
        crm_id,
        {{ dbt.concat(["'crm:'", "crm_id"]) }} as customer_key
    from unambiguous

)

select * from final
