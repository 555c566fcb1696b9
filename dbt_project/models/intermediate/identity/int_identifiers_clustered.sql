-- Connected components of the identity graph: identifiers are nodes, identifiers seen together in
-- a record are linked, noisy identifiers (int_identifiers_excluded) are left out. Each component is
-- one person as far as the evidence goes.
--
-- Components (macros/identity_components.sql): each node's anchor_rank is the smallest rank in its
-- component, every node ranked in the anchor order below. DuckDB and PostgreSQL find them by
-- min-label propagation in a recursive CTE; Spark, whose recursive CTEs cannot drop rows already
-- found, by label propagation with pointer jumping in a loop of queries before the model runs.
--
-- Stable id: the component's anchor is its member first seen (earliest first_seen_at; identifiers
-- never seen with a time come last), ties broken by type (crm_id, member_card, phone, email,
-- wechat_unionid, wechat_openid, device_id) and then by the md5 of the node key.
-- customer_id = md5(anchor node key). New data only adds identifiers seen later, so the id of a
-- component does not change when unrelated data arrives; it changes only when the component
-- merges with an older one (the merged customer keeps the older anchor's id), when backfilled data
-- shows a member earlier than the anchor, or when the anchor is excluded as noisy.
--
-- A component is a customer when it holds a CRM record or an order; other components (a device
-- that never logged in, a WeChat follower never seen with a CRM id) are visitors: customer_id null.
--
-- Incremental (macros/incremental.sql): a daily build re-clusters only the components that new
-- loads can change, and leaves every other component as it is (its nodes, edges, times and so its
-- anchor are unchanged). The pre-hook (identity_clusters_to_redo) collects those nodes into
-- <this>__redo and deletes their rows: every node the new records touched, every node that became
-- usable (new, or no longer noisy) with its neighbours, every node that became noisy, and all the
-- members of their old components. The components of that node set are closed (proof in the hook),
-- so clustering it alone gives the same components as clustering the whole graph.
{{ liucun.absorbing_config(strategy='append', after='int_identifiers_observed', pre_hook=["{{ liucun.drop_side_table('int_identifiers_clustered__redo') }}",
                                                         "{{ liucun.identity_clusters_to_redo() }}",
                                                         "{{ liucun.identity_clusters_delete_redo() }}",
                                                         "{{ liucun.identity_components_prepare() }}"]) }}
with recursive observations as (

    select * from {{ ref('int_identifiers_observed') }}
    {%- if liucun.absorbs_new_loads() %}
    where node_key in (select node_key from {{ liucun._identity_redo() }})
    {%- endif %}

),

pairs as (

    select * from {{ ref('int_identifier_pairs_observed') }}

),

excluded as (

    select * from {{ ref('int_identifiers_excluded') }}

),

identifiers as (

    select
        node_key,
        identifier_type,
        identifier_value,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        cast(sum(records) as {{ dbt.type_bigint() }}) as records,
        max(case when source in ('crm', 'orders') then 1 else 0 end) as has_customer_record
    from observations
    group by node_key, identifier_type, identifier_value

),

usable as (

    select
        identifiers.*,
        row_number() over (
            order by
                case when identifiers.first_seen_at is null then 1 else 0 end,
                identifiers.first_seen_at,
                case identifiers.identifier_type
                    when 'crm_id' then 1
                    when 'member_card' then 2
                    when 'phone' then 3
                    when 'email' then 4
                    when 'wechat_unionid' then 5
                    when 'wechat_openid' then 6
                    when 'device_id' then 7
                    else 8
                end,
                {{ dbt.hash('identifiers.node_key') }}
        ) as node_rank
    from identifiers
    left join excluded
        on identifiers.node_key = excluded.node_key
    where excluded.node_key is null

),

links as (

    select a.node_rank as rank_a, b.node_rank as rank_b
    from pairs
    inner join usable as a on pairs.node_key_a = a.node_key
    inner join usable as b on pairs.node_key_b = b.node_key

),

edges as (

    select rank_a as from_rank, rank_b as to_rank from links
    union all
    select rank_b, rank_a from links

),

{{ liucun.identity_components('usable', 'edges') }}

members as (

    select usable.*, components.anchor_rank
    from usable
    inner join components
        on usable.node_rank = components.node_rank

),

component_facts as (

    select
        anchor_rank,
        count(*) as component_identifiers,
        max(has_customer_record) as has_customer_record
    from members
    group by anchor_rank

),

final as (

    select
        members.node_key,
        members.identifier_type,
        members.identifier_value,
        anchors.node_key as component_key,
        anchors.identifier_type as component_key_type,
        component_facts.has_customer_record = 1 as is_customer,
        case when component_facts.has_customer_record = 1
            then {{ dbt.hash('anchors.node_key') }} end as customer_id,
        cast(component_facts.component_identifiers as {{ dbt.type_bigint() }}) as component_identifiers,
        members.first_seen_at,
        members.last_seen_at,
        members.records
    from members
    inner join usable as anchors
        on members.anchor_rank = anchors.node_rank
    inner join component_facts
        on members.anchor_rank = component_facts.anchor_rank

)

select * from final
