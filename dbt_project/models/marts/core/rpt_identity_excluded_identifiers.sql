-- One row per noisy identifier left out of identity linking, with why (see int_identifiers_excluded).
with excluded as (

    select * from {{ ref('int_identifiers_excluded') }}

),

final as (

    select
        identifier_type,
        identifier_value,
        linked_identifier_type,
        linked_identifiers,
        linked_identifiers_including_noisy,
        linked_types_over_limit,
        max_links_per_identifier,
        exclusion_reason,
        first_seen_at,
        last_seen_at,
        records
    from excluded

)

select * from final
