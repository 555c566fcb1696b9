-- The edges of the identity graph: every pair of distinct identifiers seen together in at least
-- one record (same record_key in int_identifiers_observed), stored once (node_key_a < node_key_b).
--
-- Incremental (macros/incremental.sql): a daily build recomputes the pairs seen together in the
-- records that new loads touched, from every observation of their identifiers (the pairs of other
-- records cannot change: they only gain rows, never lose them, since loads that replace rows
-- rebuild everything).
{{ liucun.absorbing_config(unique_key=['node_key_a', 'node_key_b'], after='int_identifiers_observed') }}
with
{%- if liucun.absorbs_new_loads() %}

touched_records as (

    select distinct record_key
    from {{ liucun.side_table('int_identifiers_observed__new') }}

),

touched_identifiers as (

    select distinct node_key
    from {{ ref('int_identifiers_observed') }}
    where record_key in (select record_key from touched_records)

),
{%- endif %}

observations as (

    select distinct record_key, identifier_type, node_key, first_seen_at, last_seen_at
    from {{ ref('int_identifiers_observed') }}
    {%- if liucun.absorbs_new_loads() %}
    where node_key in (select node_key from touched_identifiers)
    {%- endif %}

),

co_observed as (

    select
        a.node_key as node_key_a,
        a.identifier_type as identifier_type_a,
        b.node_key as node_key_b,
        b.identifier_type as identifier_type_b,
        a.record_key,
        -- linked from when both were seen in the record until either was last seen in it
        case when b.first_seen_at is null or a.first_seen_at > b.first_seen_at
            then a.first_seen_at else b.first_seen_at end as first_seen_at,
        case when b.last_seen_at is null or a.last_seen_at > b.last_seen_at
            then a.last_seen_at else b.last_seen_at end as last_seen_at
    from observations as a
    inner join observations as b
        on a.record_key = b.record_key
        and a.node_key < b.node_key

),

final as (

    select
        node_key_a,
        identifier_type_a,
        node_key_b,
        identifier_type_b,
        count(distinct record_key) as record_groups,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from co_observed
    {%- if liucun.absorbs_new_loads() %}
    where {{ dbt.concat(['node_key_a', "'|'", 'node_key_b']) }} in (
        select {{ dbt.concat(['node_key_a', "'|'", 'node_key_b']) }}
        from co_observed
        where record_key in (select record_key from touched_records)
    )
    {%- endif %}
    group by node_key_a, identifier_type_a, node_key_b, identifier_type_b

)

select * from final
