{#- A record belongs to the customer of any of its identifiers (they all resolve to one customer,
    since the record itself links them). Use the two macros together, with the identifier types
    the record carries, in order of preference:
        select {{ liucun.customer_id_from(['crm_id', 'phone']) }} as customer_id ...
        from tickets {{ liucun.customer_joins('tickets', 'id_map', ['crm_id', 'phone']) }}
    where `id_map` is int_identifiers_mapped_to_customers. Each type joins as `by_<alias>` (by_crm,
    by_phone, by_unionid, by_openid, by_device), so a model may also ask which one matched. -#}

{% macro _identifier_joins() -%}
    {#- identifier type -> (join alias, the record's column holding it) -#}
    {{ return({
        'crm_id': ('by_crm', 'crm_id'),
        'phone': ('by_phone', 'phone_hash'),
        'wechat_unionid': ('by_unionid', 'wechat_unionid'),
        'wechat_openid': ('by_openid', 'wechat_openid'),
        'device_id': ('by_device', 'device_id'),
    }) }}
{%- endmacro %}

{% macro customer_id_from(identifier_types) -%}
    {%- set joins = liucun._identifier_joins() -%}
    coalesce({% for t in identifier_types %}{{ joins[t][0] }}.customer_id{{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro customer_joins(relation, id_map, identifier_types) -%}
    {%- set joins = liucun._identifier_joins() -%}
    {%- for t in identifier_types %}
    left join {{ id_map }} as {{ joins[t][0] }}
        on {{ joins[t][0] }}.identifier_type = '{{ t }}' and {{ joins[t][0] }}.identifier_value = {{ relation }}.{{ joins[t][1] }}
    {%- endfor %}
{%- endmacro %}

{#- Events carry a CRM id when logged in, WeChat ids in the mini-program, and a device id. -#}
{% macro event_customer_id() -%}
    {{ liucun.customer_id_from(['crm_id', 'wechat_unionid', 'wechat_openid', 'device_id']) }}
{%- endmacro %}

{% macro event_customer_joins(events, id_map) -%}
    {{ liucun.customer_joins(events, id_map, ['crm_id', 'wechat_unionid', 'wechat_openid', 'device_id']) }}
{%- endmacro %}
