{#- Text value of a top-level key of a JSON object stored as text (null when absent). -#}
{% macro json_text(json_expr, key) -%}
    {{ return(adapter.dispatch('json_text', 'liucun')(json_expr, key)) }}
{%- endmacro %}

{% macro default__json_text(json_expr, key) -%}
    (cast({{ json_expr }} as json) ->> '{{ key }}')
{%- endmacro %}

{% macro duckdb__json_text(json_expr, key) -%}
    json_extract_string({{ json_expr }}, '$.{{ key }}')
{%- endmacro %}

{% macro spark__json_text(json_expr, key) -%}
    get_json_object({{ json_expr }}, '$.{{ key }}')
{%- endmacro %}
