-- Noisy identifiers, left out of linking: an identifier linked to more than
-- var('identity_max_links_per_identifier') distinct identifiers of one type is shared by many
-- people (an in-store kiosk, a family tablet, a placeholder phone typed by cashiers) and would
-- chain unrelated customers together. Links to identifiers that are over the limit themselves are
-- not counted, so a customer who used a shared device is not excluded for it.
{%- set max_links = var('identity_max_links_per_identifier') | int %}
with pairs as (

    select * from {{ ref('int_identifier_pairs_observed') }}

),

observations as (

    select * from {{ ref('int_identifiers_observed') }}

),

directed as (

    select
        node_key_a as node_key,
        node_key_b as linked_node_key,
        identifier_type_b as linked_identifier_type
    from pairs
    union all
    select node_key_b, node_key_a, identifier_type_a
    from pairs

),

raw_link_counts as (

    select node_key, linked_identifier_type, count(*) as raw_links
    from directed
    group by node_key, linked_identifier_type

),

over_limit as (

    select distinct node_key
    from raw_link_counts
    where raw_links > {{ max_links }}

),

-- links of the over-limit identifiers, not counting links to other over-limit identifiers
link_counts as (

    select directed.node_key, directed.linked_identifier_type, count(*) as links
    from directed
    inner join over_limit
        on directed.node_key = over_limit.node_key
    left join over_limit as linked_over_limit
        on directed.linked_node_key = linked_over_limit.node_key
    where linked_over_limit.node_key is null
    group by directed.node_key, directed.linked_identifier_type

),

excessive as (

    select
        link_counts.node_key,
        link_counts.linked_identifier_type,
        link_counts.links,
        raw_link_counts.raw_links,
        count(*) over (partition by link_counts.node_key) as linked_types_over_limit,
        row_number() over (
            partition by link_counts.node_key
            order by link_counts.links desc, link_counts.linked_identifier_type
        ) as rn
    from link_counts
    inner join raw_link_counts
        on link_counts.node_key = raw_link_counts.node_key
        and link_counts.linked_identifier_type = raw_link_counts.linked_identifier_type
    where link_counts.links > {{ max_links }}

),

identifiers as (

    select
        observations.node_key,
        observations.identifier_type,
        observations.identifier_value,
        min(observations.first_seen_at) as first_seen_at,
        max(observations.last_seen_at) as last_seen_at,
        cast(sum(observations.records) as {{ dbt.type_bigint() }}) as records
    from observations
    inner join excessive
        on observations.node_key = excessive.node_key
        and excessive.rn = 1
    group by observations.node_key, observations.identifier_type, observations.identifier_value

),

final as (

    select
        identifiers.node_key,
        identifiers.identifier_type,
        identifiers.identifier_value,
        excessive.linked_identifier_type,
        cast(excessive.links as {{ dbt.type_bigint() }}) as linked_identifiers,
        cast(excessive.raw_links as {{ dbt.type_bigint() }}) as linked_identifiers_including_noisy,
        cast(excessive.linked_types_over_limit as {{ dbt.type_bigint() }}) as linked_types_over_limit,
        cast({{ max_links }} as {{ dbt.type_bigint() }}) as max_links_per_identifier,
        {{ dbt.concat([
            "'linked to '", "cast(excessive.links as " ~ dbt.type_string() ~ ")",
            "' distinct '", "excessive.linked_identifier_type",
            "' identifiers (limit '", "cast(" ~ max_links ~ " as " ~ dbt.type_string() ~ ")", "')'"
        ]) }} as exclusion_reason,
        identifiers.first_seen_at,
        identifiers.last_seen_at,
        identifiers.records
    from identifiers
    inner join excessive
        on identifiers.node_key = excessive.node_key
        and excessive.rn = 1

)

select * from final
