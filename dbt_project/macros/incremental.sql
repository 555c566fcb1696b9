{#- Incremental models that absorb new loads (issue 11: a daily run costs what its new data costs).

    Such a model keeps the ledger of the raw loads (raw._loads) it has absorbed:
    incremental.<model>__loads. A build absorbs only the loads missing from that ledger when it may
    (why_computed_in_full returns ''): the model exists as an incremental table, no --full-refresh,
    both ledgers exist, no new load replaced rows, and the upstream deltas it reads cover exactly
    its new loads. Otherwise the model is computed from everything, exactly as a table model is,
    into an emptied table (rebuild_when_not_absorbing). Either way the post-hooks bring the ledger
    up to date, so whoever runs dbt (the pipeline, a person, CI) the model and its ledger agree;
    each build records which way it went in incremental._model_builds.

    The pipeline also runs dbt with --full-refresh when the models, dbt vars, liucun's code or a
    library changed (flows/publish/fingerprint.py models_rebuild_reason). That both paths publish the same
    marts is tested (tests/e2e/test_incremental.py). -#}

{#- Ledgers, deltas and redo sets live in their own schema, `incremental`, apart from the models
    (the marts schema is published as it is: BI tools must not see them). -#}
{% macro side_table(identifier) -%}
    {{ return(api.Relation.create(database=this.database, schema=liucun.schema_prefix() ~ 'incremental', identifier=identifier)) }}
{%- endmacro %}

{% macro absorbed_loads() -%}
    {{ return(liucun.side_table(this.identifier ~ '__loads')) }}
{%- endmacro %}

{#- on-run-start: list schema raw into dbt's relation cache while one thread runs. Else the first
    model thread to ask about a raw table (`_exists` below) lists the schema and adds its tables to
    the cache one by one, and the schema counts as cached from the first: another thread asking
    meanwhile is told a table that exists (raw._loads) does not. A hook rendered so dropped a model's
    load ledger that the next hook then pruned ("dim_customers__loads does not exist", seen once in
    CI with two test workers). -#}
{% macro cache_raw_schema() -%}
    {%- if execute -%}
        {%- set loads = source('raw', '_loads') -%}
        {%- do adapter.get_relation(database=loads.database, schema=loads.schema, identifier=loads.identifier) -%}
    {%- endif -%}
{%- endmacro %}

{% macro _exists(relation) -%}
    {{ return(adapter.get_relation(database=relation.database, schema=relation.schema,
                                   identifier=relation.identifier) is not none) }}
{%- endmacro %}

{% macro absorbs_new_loads() -%}
    {{ return(liucun.why_computed_in_full() == '') }}
{%- endmacro %}

{#- The answer of why_computed_in_full for this build of the model, once its first pre-hook
    (model_builds_record) recorded it: the later hooks read it instead of running the checks'
    queries again, and a hook that deletes rows cannot change the answer halfway. (dbt compiles
    the model's SQL before any hook runs: that compilation runs the checks itself.) -#}
{% macro _recorded_answer() -%}
    {%- set builds = liucun.side_table('_model_builds') -%}
    {%- if not liucun._exists(builds) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set recorded -%}
        select coalesce(max(computed_in_full_because), '') , count(*) from {{ builds }}
        where invocation_id = '{{ invocation_id }}' and model = '{{ this.identifier }}'
    {%- endset -%}
    {%- set row = run_query(recorded).rows[0] -%}
    {{ return(row[0] if row[1] > 0 else none) }}
{%- endmacro %}

{#- Why this build computes the model from everything ('' when it absorbs the new loads). -#}
{% macro why_computed_in_full() -%}
    {#- (a dbt unit test has no `this`: it tests the model computed from its given rows) -#}
    {%- if not execute or this is none -%}
        {{ return('not executing') }}
    {%- endif -%}
    {%- set recorded = liucun._recorded_answer() -%}
    {%- if recorded is not none -%}
        {{ return(recorded) }}
    {%- endif -%}
    {%- set unsupported = liucun.absorbing_unsupported() -%}
    {%- if unsupported -%}
        {{ return(unsupported) }}
    {%- endif -%}
    {%- if not is_incremental() -%}
        {{ return('first build or --full-refresh') }}
    {%- endif -%}
    {%- if not liucun._exists(source('raw', '_loads')) -%}
        {{ return('no load ledger (raw._loads)') }}
    {%- endif -%}
    {%- if not liucun._exists(liucun.absorbed_loads()) -%}
        {{ return('no ledger of the loads it absorbed') }}
    {%- endif -%}
    {#- the pipeline runs dbt with --full-refresh after a correction (flows/publish/fingerprint.py); this
        is the same rule for whoever else runs dbt: a load that replaced rows, or a new line of an
        order loaded before, changes rows an absorbing model already holds -#}
    {%- set corrections -%}
        select
            (select coalesce(sum(rows_replaced), 0) from {{ source('raw', '_loads') }}
             where load_id in {{ liucun.new_loads() }}),
            (select count(*) from {{ source('raw', 'order_lines') }} as added
             where added._load_id in {{ liucun.new_loads() }}
               and added.order_id in (select order_id from {{ source('raw', 'order_lines') }}
                                      where _load_id not in {{ liucun.new_loads() }}))
    {%- endset -%}
    {%- set row = run_query(corrections).rows[0] -%}
    {%- if row[0] > 0 -%}
        {{ return('new loads replaced rows') }}
    {%- elif row[1] > 0 -%}
        {{ return('new lines of orders loaded before') }}
    {%- endif -%}
    {#- a model that absorbs what an upstream model absorbed (config absorbs_after) reads that
        model's delta (<upstream>__new): only when it covers exactly the loads this one lacks -#}
    {%- set after = config.get('absorbs_after') -%}
    {%- if after -%}
        {%- set covered = liucun.side_table(after ~ '__new_loads') -%}
        {%- if not liucun._exists(covered) -%}
            {{ return(after ~ ' was computed in full') }}
        {%- endif -%}
        {%- set differ -%}
            select count(*) from (
                (select load_id from {{ liucun.new_loads() }} as mine
                 except select load_id from {{ covered }})
                union all
                (select load_id from {{ covered }}
                 except select load_id from {{ liucun.new_loads() }} as theirs)
            ) as differing
        {%- endset -%}
        {%- if run_query(differ).columns[0].values()[0] != 0 -%}
            {{ return(after ~ ' absorbed other loads') }}
        {%- endif -%}
    {%- endif -%}
    {#- a customer model (config absorbs_customers) recomputes the customers whose identity the
        clustering of this build redid: it needs that clustering's redo set -#}
    {%- if config.get('absorbs_customers') and not liucun._exists(liucun._identity_redo()) -%}
        {{ return('int_identifiers_clustered was computed in full') }}
    {%- endif -%}
    {#- a model of complete periods (config absorbs_periods) is rebuilt when a period completed:
        every customer gains a row -#}
    {%- if config.get('absorbs_periods') -%}
        {%- set last_periods -%}
            select
                (select max(period_start) from {{ this }}),
                (select max(period_start) from {{ ref('int_periods') }}
                 where is_complete and {{ liucun.at_period_grain() }})
        {%- endset -%}
        {%- set row = run_query(last_periods).rows[0] -%}
        {%- if row[0] is none or row[0] != row[1] -%}
            {{ return('a period completed') }}
        {%- endif -%}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}

{#- pre-hooks: each build of a model that can absorb says which way it built, in
    incremental._model_builds (the pipeline's summary reads it) -#}
{% macro model_builds_create() -%}
    {%- if execute -%}
        {%- set builds = liucun.side_table('_model_builds') -%}
        {{ liucun._created(builds) }}create table if not exists {{ builds }} (
            invocation_id {{ dbt.type_string() }}, model {{ dbt.type_string() }},
            computed_in_full_because {{ dbt.type_string() }})
    {%- endif -%}
{%- endmacro %}

{% macro model_builds_record() -%}
    {%- if execute -%}
        {%- set why = liucun.why_computed_in_full() -%}
        insert into {{ liucun.side_table('_model_builds') }}
        values ('{{ invocation_id }}', '{{ this.identifier }}', {{ "'" ~ why ~ "'" if why else 'null' }})
    {%- endif -%}
{%- endmacro %}

{#- Tables made by hooks are made by plain SQL, which dbt's relation cache does not see: the hooks
    tell it (`_created`, `_dropped`), so a later model of the same build finds them. -#}
{% macro _created(relation) -%}
    {%- do adapter.create_schema(relation) -%}
    {%- do adapter.cache_added(relation.incorporate(type='table')) -%}
{%- endmacro %}

{% macro _dropped(relation) -%}
    {%- do adapter.create_schema(relation) -%}
    {%- do adapter.cache_dropped(relation.incorporate(type='table')) -%}
{%- endmacro %}


{#- The delta of an absorbing model that downstream models absorb after it: <model>__new, the rows
    computed from the new loads (`rows_sql`), and <model>__new_loads, which loads those are. Dropped
    whenever the model is computed in full, so no downstream model can take a stale delta. -#}
{% macro drop_side_table(identifier) -%}
    {%- if execute -%}
        {%- set table = liucun.side_table(identifier) -%}
        {{ liucun._dropped(table) }}drop table if exists {{ table }}
    {%- endif -%}
{%- endmacro %}

{% macro delta_create(rows_sql) -%}
    {%- if liucun.absorbs_new_loads() -%}
        {%- set delta = liucun.side_table(this.identifier ~ '__new') -%}
        {{ liucun._created(delta) }}create table {{ delta }} as {{ rows_sql }}
    {%- endif -%}
{%- endmacro %}

{% macro delta_loads_create() -%}
    {%- if liucun.absorbs_new_loads() -%}
        {%- set delta = liucun.side_table(this.identifier ~ '__new_loads') -%}
        {{ liucun._created(delta) }}create table {{ delta }} as
        select load_id from {{ liucun.new_loads() }} as new_loads
    {%- endif -%}
{%- endmacro %}

{#- A subquery of the load ids this model has not absorbed yet. -#}
{% macro new_loads() -%}
    (select load_id from {{ source('raw', '_loads') }}
     where load_id not in (select load_id from {{ liucun.absorbed_loads() }}))
{%- endmacro %}

{#- A where clause keeping the rows of `new_loads` (none: every row). -#}
{% macro only_new_loads(new_loads) -%}
    {%- if new_loads is not none %} where load_id in {{ new_loads }}{% endif -%}
{%- endmacro %}

{#- pre-hook: an incremental model computed from everything starts from an empty table -#}
{% macro rebuild_when_not_absorbing() -%}
    {%- if execute and is_incremental() and not liucun.absorbs_new_loads() -%}
        delete from {{ this }}
    {%- endif -%}
{%- endmacro %}

{#- post-hooks, one statement each (portable): the ledger of absorbed loads, up to date -#}
{% macro absorbed_loads_create() -%}
    {%- if execute -%}
        {%- if liucun._exists(source('raw', '_loads')) -%}
            {{ liucun._created(liucun.absorbed_loads()) }}create table if not exists {{ liucun.absorbed_loads() }} (load_id {{ dbt.type_string() }})
        {%- else -%}
            {{ liucun._dropped(liucun.absorbed_loads()) }}drop table if exists {{ liucun.absorbed_loads() }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro absorbed_loads_prune() -%}
    {%- if execute and liucun._exists(source('raw', '_loads')) -%}
        delete from {{ liucun.absorbed_loads() }}
        where load_id not in (select load_id from {{ source('raw', '_loads') }})
    {%- endif -%}
{%- endmacro %}

{% macro absorbed_loads_add() -%}
    {%- if execute and liucun._exists(source('raw', '_loads')) -%}
        insert into {{ liucun.absorbed_loads() }}
        select load_id from {{ source('raw', '_loads') }}
        where load_id not in (select load_id from {{ liucun.absorbed_loads() }})
    {%- endif -%}
{%- endmacro %}

{#- The config of a model that absorbs new loads; `pre_hook` adds hooks after the emptying one. -#}
{% macro absorbing_config(unique_key=none, strategy='delete+insert', pre_hook=[], after=none,
                          customers=false, periods=false) -%}
    {{ return(adapter.dispatch('absorbing_config', 'liucun')(unique_key, strategy, pre_hook, after,
                                                             customers, periods)) }}
{%- endmacro %}

{#- Spark (Parquet tables: no delete, no merge): these models are tables computed from all the
    data at every build. They record nothing in incremental._model_builds: two dbt threads inserting
    into one Parquet table at once collide in Hadoop's commit protocol (both write under the
    table's _temporary/0, and the first to finish removes it), and there is nothing to tell apart
    (the Spark engine reports every model computed in full). -#}
{% macro spark__absorbing_config(unique_key, strategy, pre_hook, after, customers, periods) -%}
    {{ config(materialized='table', pre_hook=pre_hook) }}
{%- endmacro %}

{#- Why models never absorb new loads on this target ('' where they may). -#}
{% macro absorbing_unsupported() -%}
    {{ return(adapter.dispatch('absorbing_unsupported', 'liucun')()) }}
{%- endmacro %}

{% macro default__absorbing_unsupported() -%}
    {{ return('') }}
{%- endmacro %}

{% macro spark__absorbing_unsupported() -%}
    {{ return('Parquet tables on Spark are computed in full') }}
{%- endmacro %}

{% macro default__absorbing_config(unique_key, strategy, pre_hook, after, customers, periods) -%}
    {{ config(
        materialized='incremental',
        absorbs_after=after,
        absorbs_customers=customers,
        absorbs_periods=periods,
        incremental_strategy=strategy,
        unique_key=unique_key,
        on_schema_change='fail',
        pre_hook=["{{ liucun.model_builds_create() }}", "{{ liucun.model_builds_record() }}",
                  "{{ liucun.rebuild_when_not_absorbing() }}"] + pre_hook,
        post_hook=["{{ liucun.absorbed_loads_create() }}", "{{ liucun.absorbed_loads_prune() }}",
                   "{{ liucun.absorbed_loads_add() }}"],
    ) }}
{%- endmacro %}

{#- int_identifiers_clustered: the nodes whose component is computed again this build. -#}

{#- pre-hook of int_identifiers_clustered (`this`), before it absorbs new loads. The nodes to
    cluster again, S, are: T = the nodes the new records touched (their times, and maybe their
    links, changed), U = the usable nodes not clustered before (new, or no longer noisy), their
    neighbours N(U), X = the clustered nodes that are noisy now, and every member of the old
    components of T, N(U) and X.
    Closed: take u in S and a link u-v of the new graph. A new link has both ends in T. An old
    link between two nodes usable before joined one old component: it is in S when u's is (u in
    T or in an old component of S); when u is in U it had none, and v is in N(U). An old link to a
    node not usable before has that node in U, so u is in N(U). Untouched components keep their
    nodes, links and times, hence their anchor and id. -#}
{% macro identity_clusters_to_redo() -%}
    {%- if execute and liucun.absorbs_new_loads() -%}
    {{ liucun._created(liucun._identity_redo()) }}create table {{ liucun._identity_redo() }} as
    with new_rows as (

        select * from {{ liucun.side_table('int_identifiers_observed__new') }}

    ),

    excluded as (

        select node_key from {{ ref('int_identifiers_excluded') }}

    ),

    touched as (

        select distinct node_key from new_rows

    ),

    became_usable as (

        select distinct node_key
        from {{ ref('int_identifiers_observed') }}
        where node_key not in (select node_key from excluded)
            and node_key not in (select node_key from {{ this }})

    ),

    usable_neighbours as (

        select node_key_b as node_key
        from {{ ref('int_identifier_pairs_observed') }}
        where node_key_a in (select node_key from became_usable)
        union
        select node_key_a
        from {{ ref('int_identifier_pairs_observed') }}
        where node_key_b in (select node_key from became_usable)

    ),

    became_noisy as (

        select node_key from {{ this }}
        where node_key in (select node_key from excluded)

    ),

    seeds as (

        select node_key from touched
        union
        select node_key from became_usable
        union
        select node_key from usable_neighbours
        union
        select node_key from became_noisy

    ),

    redo as (

        select node_key from seeds
        union
        select node_key from {{ this }}
        where component_key in (
            select component_key from {{ this }}
            where node_key in (select node_key from seeds)
        )

    )

    -- with the customer each node belonged to before (customer models recompute both)
    select redo.node_key, before.customer_id as customer_id_before
    from redo
    left join {{ this }} as before
        on redo.node_key = before.node_key
    {%- endif -%}
{%- endmacro %}

{% macro identity_clusters_delete_redo() -%}
    {%- if execute and liucun.absorbs_new_loads() -%}
        delete from {{ this }} where node_key in (select node_key from {{ liucun._identity_redo() }})
    {%- endif -%}
{%- endmacro %}


{#- The customers a build of the identity graph changed: every customer (before and after) of the
    nodes int_identifiers_clustered clustered again. Every new record with an identifier touched
    its nodes, so this holds every customer with a new order, event, ticket, session, membership
    or CRM record too, and every customer merged, split or renamed. -#}
{% macro _identity_redo() -%}
    {{ return(liucun.side_table('int_identifiers_clustered__redo')) }}
{%- endmacro %}

{% macro changed_customers() -%}
    (select customer_id_before as customer_id from {{ liucun._identity_redo() }}
     where customer_id_before is not null
     union
     select customer_id from {{ ref('int_identifiers_clustered') }}
     where customer_id is not null
       and node_key in (select node_key from {{ liucun._identity_redo() }}))
{%- endmacro %}

{#- `where` (or `and`) clause keeping the changed customers' rows when the model absorbs -#}
{% macro only_changed_customers(keyword='where', column='customer_id') -%}
    {%- if liucun.absorbs_new_loads() %} {{ keyword }} {{ column }} in {{ liucun.changed_customers() }}{% endif -%}
{%- endmacro %}

{#- pre-hook of a customer model that absorbs: its changed customers' rows go, to be recomputed -#}
{% macro delete_changed_customers() -%}
    {%- if liucun.absorbs_new_loads() -%}
        delete from {{ this }} where customer_id in {{ liucun.changed_customers() }}
    {%- endif -%}
{%- endmacro %}

{% macro customer_absorbing_config(periods=false) -%}
    {{ liucun.absorbing_config(strategy='append', after='int_identifiers_observed', customers=true,
                               periods=periods, pre_hook=["{{ liucun.delete_changed_customers() }}"]) }}
{%- endmacro %}

{#- pre-hook of int_identifiers_mapped_to_customers when it absorbs: the redone nodes' rows go -#}
{% macro delete_redone_nodes() -%}
    {%- if liucun.absorbs_new_loads() -%}
        delete from {{ this }} where node_key in (select node_key from {{ liucun._identity_redo() }})
    {%- endif -%}
{%- endmacro %}

{#- The orders whose attribution a daily build must redo (a condition on int_orders_unioned): the
    orders of the new loads, and every order with an identifier the identity graph clustered
    again (its customer may have changed; no other order's can). -#}
{% macro reattributed_orders(alias='') -%}
    {%- set p = alias ~ '.' if alias else '' -%}
    ({{ p }}load_id in {{ liucun.new_loads() }}
     {%- for type, column in [('crm_id', 'crm_id'), ('member_card', 'member_card'), ('phone', 'phone_hash'),
                              ('wechat_unionid', 'wechat_unionid')] %}
     or {{ dbt.concat(["'" ~ type ~ ":'", p ~ column]) }} in (select node_key from {{ liucun._identity_redo() }})
     {%- endfor %})
{%- endmacro %}

{% macro delete_reattributed_orders() -%}
    {%- if liucun.absorbs_new_loads() -%}
        delete from {{ this }} where order_id in (
            select order_id from {{ ref('int_orders_unioned') }} where {{ liucun.reattributed_orders() }})
    {%- endif -%}
{%- endmacro %}
