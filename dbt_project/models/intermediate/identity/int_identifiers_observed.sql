-- Every customer identifier seen in every source record: the evidence of the identity graph.
-- Identifiers seen together in one record are linked (int_identifier_pairs_observed).
-- Records that reference an order (the checkout event of an order, a ticket or survey about an
-- order, the campaign contact whose coupon an order redeemed) share that order's record key, so
-- their identifiers are linked with the order's. Other records are keyed by their source and
-- identifier set: records with the same identifiers form one group, which loses no link.
--
-- Incremental (macros/incremental.sql): a daily build adds the observations of the new loads to
-- the record keys they touch. Each row's counts are sums and min/max over disjoint records, so
-- old row + new records = the row computed from all records.
-- The rows of the new loads stay beside it (int_identifiers_observed__new) for the identity models
-- that absorb after it.
{{ liucun.absorbing_config(unique_key='record_key', pre_hook=[
    "{{ liucun.drop_side_table('int_identifiers_observed__new') }}",
    "{{ liucun.drop_side_table('int_identifiers_observed__new_loads') }}",
    "{{ liucun.delta_create(liucun.identifier_observation_rows(new_loads=liucun.new_loads())) }}",
    "{{ liucun.delta_loads_create() }}"]) }}
-- depends_on: {{ source('raw', '_loads') }}

{% if liucun.absorbs_new_loads() %}

with new_rows as (

    select * from {{ liucun.side_table('int_identifiers_observed__new') }}

),

touched_rows as (

    select record_key, source, channel, identifier_type, identifier_value, node_key,
        first_seen_at, last_seen_at, records
    from {{ this }}
    where record_key in (select record_key from new_rows)

),

final as (

    select
        record_key,
        source,
        channel,
        identifier_type,
        identifier_value,
        node_key,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        cast(sum(records) as {{ dbt.type_bigint() }}) as records
    from (
        select * from new_rows
        union all
        select * from touched_rows
    ) as merged
    group by record_key, source, channel, identifier_type, identifier_value, node_key

)

select * from final

{% else %}

{{ liucun.identifier_observation_rows() }}

{% endif %}
