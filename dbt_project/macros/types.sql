{#- Type names the models cast to, for every target: bare `varchar` and `double precision` are
    not Spark SQL (it says `string` and `double`); `double` alone is not PostgreSQL. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'liucun')()) }}
{%- endmacro %}

{% macro default__type_double() -%}double precision{%- endmacro %}

{% macro spark__type_double() -%}double{%- endmacro %}

{% macro type_text() -%}
    {{ return(adapter.dispatch('type_text', 'liucun')()) }}
{%- endmacro %}

{% macro default__type_text() -%}varchar{%- endmacro %}

{% macro spark__type_text() -%}string{%- endmacro %}
