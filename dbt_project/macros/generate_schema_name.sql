{#- Use the configured schema name as-is (staging, intermediate, marts), on every target, after
    $LIUCUN_SCHEMA_PREFIX (empty unless set): on an engine whose candidates share one catalog
    (Spark), a run builds into its own prefixed databases, apart from what readers see. The sources
    (raw, ml) and the side tables of macros/incremental.sql take the same prefix. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ liucun.schema_prefix() }}{%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}

{% macro schema_prefix() -%}
    {{ return(env_var('LIUCUN_SCHEMA_PREFIX', '')) }}
{%- endmacro %}
