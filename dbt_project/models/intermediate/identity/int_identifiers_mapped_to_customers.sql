-- The identifier -> customer map: every identifier of a customer component of the identity graph
-- (int_identifiers_clustered). Noisy identifiers and visitor-only components are not in it.
-- A daily build replaces the rows of the nodes the clustering redid (macros/incremental.sql).
{{ liucun.absorbing_config(strategy='append', after='int_identifiers_observed', customers=true,
                           pre_hook=["{{ liucun.delete_redone_nodes() }}"]) }}
with clustered as (

    select * from {{ ref('int_identifiers_clustered') }}
    where is_customer
    {%- if liucun.absorbs_new_loads() %}
      and node_key in (select node_key from {{ liucun._identity_redo() }})
    {%- endif %}

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
