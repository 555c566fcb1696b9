{#- An event belongs to the customer of any of its identifiers (they all resolve to one customer,
    since the event itself links them). Use both macros together:
        select {{ liucun.event_customer_id() }} as customer_id ...
        from events {{ liucun.event_customer_joins('events', 'id_map') }}
    where `id_map` is int_identifiers_mapped_to_customers. -#}

{% macro event_customer_id() -%}
    coalesce(by_crm.customer_id, by_unionid.customer_id, by_openid.customer_id, by_device.customer_id)
{%- endmacro %}

{% macro event_customer_joins(events, id_map) -%}
    left join {{ id_map }} as by_crm
        on by_crm.identifier_type = 'crm_id' and by_crm.identifier_value = {{ events }}.crm_id
    left join {{ id_map }} as by_unionid
        on by_unionid.identifier_type = 'wechat_unionid' and by_unionid.identifier_value = {{ events }}.wechat_unionid
    left join {{ id_map }} as by_openid
        on by_openid.identifier_type = 'wechat_openid' and by_openid.identifier_value = {{ events }}.wechat_openid
    left join {{ id_map }} as by_device
        on by_device.identifier_type = 'device_id' and by_device.identifier_value = {{ events }}.device_id
{%- endmacro %}
