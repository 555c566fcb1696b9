-- One row per identity-resolution quality metric: components and customers, customer and
-- component sizes, merged CRM records, identifiers mapped and excluded by type, attributed orders.
-- Each row gives its value, the base it is counted against and value / base.
with clustered as (

    select * from {{ ref('int_identifiers_clustered') }}

),

excluded as (

    select * from {{ ref('int_identifiers_excluded') }}

),

orders as (

    select * from {{ ref('int_orders_attributed') }}

),

identifier_types as (

    select 1 as sort_order, 'crm_id' as identifier_type
    union all select 2, 'phone'
    union all select 3, 'email'
    union all select 4, 'member_card'
    union all select 5, 'wechat_unionid'
    union all select 6, 'wechat_openid'
    union all select 7, 'device_id'

),

size_buckets as (

    select 1 as sort_order, '1' as bucket, 1 as min_size, 1 as max_size
    union all select 2, '2', 2, 2
    union all select 3, '3-5', 3, 5
    union all select 4, '6-10', 6, 10
    union all select 5, '>10', 11, null

),

components as (

    select
        component_key,
        max(case when is_customer then 1 else 0 end) as is_customer,
        count(*) as identifiers,
        sum(case when identifier_type = 'crm_id' then 1 else 0 end) as crm_ids
    from clustered
    group by component_key

),

totals as (

    select
        count(*) as components,
        sum(is_customer) as customers,
        sum(case when is_customer = 1 and crm_ids > 0 then 1 else 0 end) as customers_with_crm
    from components

),

observed_by_type as (

    select identifier_type, count(*) as identifiers,
        sum(case when is_customer then 1 else 0 end) as mapped
    from clustered
    group by identifier_type
    union all
    select identifier_type, count(*), 0
    from excluded
    group by identifier_type

),

by_type as (

    select
        identifier_types.sort_order,
        identifier_types.identifier_type,
        coalesce(sum(observed_by_type.identifiers), 0) as observed,
        coalesce(sum(observed_by_type.mapped), 0) as mapped,
        coalesce(max(excluded_counts.excluded), 0) as excluded
    from identifier_types
    left join observed_by_type
        on identifier_types.identifier_type = observed_by_type.identifier_type
    left join (
        select identifier_type, count(*) as excluded from excluded group by identifier_type
    ) as excluded_counts
        on identifier_types.identifier_type = excluded_counts.identifier_type
    group by identifier_types.sort_order, identifier_types.identifier_type

),

order_totals as (

    select
        count(*) as orders,
        sum(case when customer_id is not null then 1 else 0 end) as attributed
    from orders

),

metrics as (

    select 'components' as metric_group, 'components' as metric, 1 as sort_order,
        totals.components as value, totals.components as base,
        'Connected components of the identity graph (customers and visitors).' as description
    from totals
    union all
    select 'components', 'customers', 2, totals.customers, totals.components,
        'Components holding a CRM record or an order: one customer_id each.'
    from totals
    union all
    select 'components', 'visitor_components', 3, totals.components - totals.customers,
        totals.components,
        'Components with neither a CRM record nor an order (e.g. a device that never logged in).'
    from totals
    union all
    select 'customer_size', size_buckets.bucket, size_buckets.sort_order,
        sum(case when components.identifiers is not null then 1 else 0 end), max(totals.customers),
        'Customers with this many identifiers.'
    from size_buckets
    cross join totals
    left join components
        on components.is_customer = 1
        and components.identifiers >= size_buckets.min_size
        and (size_buckets.max_size is null or components.identifiers <= size_buckets.max_size)
    group by size_buckets.bucket, size_buckets.sort_order
    union all
    select 'component_size', size_buckets.bucket, size_buckets.sort_order,
        sum(case when components.identifiers is not null then 1 else 0 end), max(totals.components),
        'Components (customers and visitors) with this many identifiers.'
    from size_buckets
    cross join totals
    left join components
        on components.identifiers >= size_buckets.min_size
        and (size_buckets.max_size is null or components.identifiers <= size_buckets.max_size)
    group by size_buckets.bucket, size_buckets.sort_order
    union all
    select 'crm_records', 'customers_with_multiple_crm_records', 1,
        sum(case when is_customer = 1 and crm_ids > 1 then 1 else 0 end), max(totals.customers),
        'Customers whose CRM records were merged (two or more crm_id).'
    from components
    cross join totals
    union all
    select 'crm_records', 'crm_records_in_merged_customers', 2,
        sum(case when is_customer = 1 and crm_ids > 1 then crm_ids else 0 end), sum(crm_ids),
        'CRM records that belong to a customer with more than one CRM record.'
    from components
    union all
    select 'crm_records', 'customers_without_crm_record', 3,
        totals.customers - totals.customers_with_crm, totals.customers,
        'Customers known only from orders and other touchpoints.'
    from totals
    union all
    select 'identifiers_mapped', identifier_type, sort_order, mapped, observed,
        'Identifiers of this type mapped to a customer.'
    from by_type
    union all
    select 'identifiers_excluded', identifier_type, sort_order, excluded, observed,
        'Noisy identifiers of this type left out of linking (rpt_identity_excluded_identifiers).'
    from by_type
    union all
    select 'orders', 'attributed', 1, attributed, orders, 'Orders attributed to a customer.'
    from order_totals
    union all
    select 'orders', 'anonymous', 2, orders - attributed, orders,
        'Orders with no identifier mapped to a customer.'
    from order_totals

),

final as (

    select
        metric_group,
        metric,
        cast(sort_order as {{ dbt.type_bigint() }}) as sort_order,
        cast(coalesce(value, 0) as {{ dbt.type_bigint() }}) as value,
        cast(coalesce(base, 0) as {{ dbt.type_bigint() }}) as base,
        {{ liucun.ratio('coalesce(value, 0)', 'base') }} as share_of_base,
        description
    from metrics

)

select * from final
