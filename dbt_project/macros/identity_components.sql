{#- Connected components of int_identifiers_clustered: a CTE `components` (node_rank, anchor_rank)
    where anchor_rank is the smallest node_rank of the node's component, from the CTEs `nodes`
    (node_key, node_rank) and `edges` (from_rank, to_rank, both directions). -#}
{% macro identity_components(nodes, edges) -%}
    {{ return(adapter.dispatch('identity_components', 'liucun')(nodes, edges)) }}
{%- endmacro %}

{#- Min-label propagation in a recursive CTE: a node passes its label to a neighbour only when the
    label is smaller than the neighbour's own rank, which keeps the component minimum flowing to
    every node (along a simple path from the minimum every next node is larger) while pruning the
    other labels early. UNION drops rows already found, so the recursion stops. -#}
{% macro default__identity_components(nodes, edges) -%}
propagated (node_rank, label) as (

    select node_rank, node_rank from {{ nodes }}
    union
    select {{ edges }}.to_rank, propagated.label
    from propagated
    inner join {{ edges }}
        on propagated.node_rank = {{ edges }}.from_rank
    where propagated.label < {{ edges }}.to_rank

),

components as (

    select node_rank, min(label) as anchor_rank
    from propagated
    group by node_rank

),
{%- endmacro %}

{#- Spark: the pre-hook identity_components_prepare wrote each usable node's component (named by
    its smallest node key); the anchor is the component member of smallest rank. A dbt unit test
    runs no hook (and has no `this`): its few given rows are clustered by a fixed number of
    propagation steps in the query itself, each step giving every node the smallest label among
    itself and its neighbours; more than the longest path in any of the unit tests' graphs. -#}
{% macro spark__identity_components(nodes, edges) -%}
{%- if this is none -%}
{%- set steps = 12 -%}
cc_edges as (

    select from_rank, to_rank from {{ edges }}
    union all
    select node_rank, node_rank from {{ nodes }}

),

cc_0 as (

    select node_rank, node_rank as label from {{ nodes }}

),
{% for i in range(steps) %}
cc_{{ i + 1 }} as (

    select cc_edges.to_rank as node_rank, min(cc_{{ i }}.label) as label
    from cc_{{ i }}
    inner join cc_edges
        on cc_{{ i }}.node_rank = cc_edges.from_rank
    group by cc_edges.to_rank

),
{% endfor %}
components as (

    select node_rank, label as anchor_rank from cc_{{ steps }}

),
{%- else -%}
components as (

    select
        {{ nodes }}.node_rank,
        min({{ nodes }}.node_rank) over (partition by found.component) as anchor_rank
    from {{ nodes }}
    inner join {{ liucun.side_table('int_identifiers_clustered__components') }} as found
        on {{ nodes }}.node_key = found.node_key

),
{%- endif -%}
{%- endmacro %}

{#- pre-hook of int_identifiers_clustered: nothing to prepare where a recursive CTE finds the
    components. -#}
{% macro identity_components_prepare() -%}
    {{ return(adapter.dispatch('identity_components_prepare', 'liucun')()) }}
{%- endmacro %}

{% macro default__identity_components_prepare() -%}{%- endmacro %}

{#- Spark: label propagation with pointer jumping, one query per step, until no label changes.
    Every usable node (observed, not excluded) starts with its own key as label; a step gives each
    node the smallest label among itself and its neighbours, then the label of that label (the
    jump, which halves the distance the smallest label still has to travel). Labels only fall and
    each is a key of the component, so the loop ends with every node holding its component's
    smallest key; it fails rather than stop early. -#}
{% macro spark__identity_components_prepare() -%}
    {%- if execute -%}
        {%- set out = liucun.side_table('int_identifiers_clustered__components') -%}
        {%- set edges = liucun.side_table('int_identifiers_clustered__cc_edges') -%}
        {%- set step = liucun.side_table('int_identifiers_clustered__cc_step') -%}
        {%- do adapter.create_schema(out) -%}
        {%- for t in [out, edges, step] %}{% do run_query('drop table if exists ' ~ t) %}{% endfor -%}
        {%- set usable -%}
            (select distinct observed.node_key
             from {{ ref('int_identifiers_observed') }} as observed
             left join {{ ref('int_identifiers_excluded') }} as excluded on observed.node_key = excluded.node_key
             where excluded.node_key is null)
        {%- endset -%}
        {%- do run_query('create table ' ~ edges ~ ' using parquet as
            with links as (
                select pairs.node_key_a as a, pairs.node_key_b as b
                from ' ~ ref('int_identifier_pairs_observed') ~ ' as pairs
                inner join ' ~ usable ~ ' as ua on pairs.node_key_a = ua.node_key
                inner join ' ~ usable ~ ' as ub on pairs.node_key_b = ub.node_key)
            select a as from_key, b as to_key from links union select b, a from links') -%}
        {%- do run_query('create table ' ~ out ~ ' using parquet as select node_key, node_key as component from ' ~ usable) -%}
        {%- set converged = [] -%}
        {%- for i in range(200) -%}
            {%- do run_query('create table ' ~ step ~ ' using parquet as
                with spread as (
                    select labels.node_key, least(labels.component, coalesce(min(near.component), labels.component)) as component
                    from ' ~ out ~ ' as labels
                    left join ' ~ edges ~ ' as e on labels.node_key = e.to_key
                    left join ' ~ out ~ ' as near on e.from_key = near.node_key
                    group by labels.node_key, labels.component)
                select spread.node_key, least(spread.component, jumped.component) as component
                from spread inner join spread as jumped on spread.component = jumped.node_key') -%}
            {%- set changed = run_query('select count(*) from ' ~ step ~ ' as s inner join ' ~ out ~
                                        ' as o on s.node_key = o.node_key where s.component <> o.component').columns[0].values()[0] -%}
            {%- do run_query('drop table ' ~ out) -%}
            {%- do run_query('alter table ' ~ step ~ ' rename to ' ~ out) -%}
            {%- if changed == 0 -%}
                {%- do converged.append(i + 1) -%}
                {%- break -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do run_query('drop table if exists ' ~ edges) -%}
        {%- if not converged -%}
            {{ exceptions.raise_compiler_error('identity components did not converge in 200 steps') }}
        {%- endif -%}
        {{ log('identity components: ' ~ converged[0] ~ ' propagation steps', info=false) }}
    {%- endif -%}
{%- endmacro %}
