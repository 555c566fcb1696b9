{#- The segment types the retention figures are split by besides 'all': var('retention_segment_types'),
    each a column of int_customer_segments. -#}
{% macro retention_segment_types() -%}
    {%- set known = ['acquisition_channel', 'first_order_channel', 'region', 'value_tier'] -%}
    {%- set types = var('retention_segment_types', known) -%}
    {%- for t in types -%}
        {%- if t not in known -%}
            {{ exceptions.raise_compiler_error(
                "var('retention_segment_types'): unknown segment type " ~ t ~ "; known: " ~ known | join(', ')) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(types) }}
{%- endmacro %}
