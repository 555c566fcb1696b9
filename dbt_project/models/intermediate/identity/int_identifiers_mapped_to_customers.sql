-- The identifier -> customer map: every identifier of a customer component of the identity graph
-- (int_identifiers_clustered). Noisy identifiers and visitor-only components are not in it.
with clustered as (

    select * from {{ ref('int_identifiers_clustered') }}
    where is_customer

),

final as (

    select
        identifier_type,
        identifier_value,
        node_key,
        customer_id,
        component_key as customer_key,
        first_seen_at,
        last_seen_at
    from clustered

)

select * from final
