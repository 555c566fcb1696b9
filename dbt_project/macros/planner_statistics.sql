{#- On-run-start (the sources) and post-hook of every model and seed (the table just built), in
    dbt_project.yml: fresh planner statistics, on the databases that keep them only when asked.
    PostgreSQL's autovacuum analyzes a new table only a while after it is loaded, so a model built
    seconds after its inputs was planned on default estimates (a filter keeps 0.5 % of the rows, a
    CTE read twice has no column statistics): fct_churn_risk ran nested loops over its events and
    the identifier map and took 135 s for 3,000 customers, 0.1 s with its inputs analyzed (its
    events come from a raw table loaded just before the build, so the sources are analyzed too).
    DuckDB and Spark plan without them: nothing runs there. -#}
{% macro refresh_planner_statistics() -%}
    {{- return(adapter.dispatch('refresh_planner_statistics', 'liucun')()) -}}
{%- endmacro %}

{% macro default__refresh_planner_statistics() -%}{%- endmacro %}

{% macro postgres__refresh_planner_statistics() -%}
    {%- if config.get('materialized') in ('table', 'incremental', 'seed') -%}
        analyze {{ this }}
    {%- endif -%}
{%- endmacro %}

{% macro refresh_source_statistics() -%}
    {{- return(adapter.dispatch('refresh_source_statistics', 'liucun')()) -}}
{%- endmacro %}

{% macro default__refresh_source_statistics() -%}{%- endmacro %}

{#- every source table of the project that exists (ANALYZE samples at most 30,000 rows a table) -#}
{% macro postgres__refresh_source_statistics() -%}
    {%- if execute -%}
        {%- for node in graph.sources.values() if node.package_name == project_name -%}
            {%- set relation = adapter.get_relation(node.database, node.schema, node.identifier) -%}
            {%- if relation is not none %}
        analyze {{ relation }};
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
