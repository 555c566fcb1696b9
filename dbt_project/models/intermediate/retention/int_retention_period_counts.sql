-- One row per published grain (var('period_grains')), complete period, segment and base definition (var('retention_base_definitions')):
-- S (in the base at the end of the previous period), E (in the base at the end of this period),
-- N (first-ever activity this period), retained (in both), and the revenue behind them.
--   active_in_period: the base is the customers active in the period.
--   active_window:    the base is the customers active within var('active_window_days') days up
--                     to the period's last day.
-- Segments: 'all' and each of var('retention_segment_types') (columns of int_customer_segments).
-- The figures are those of fct_customer_periods' spine (a row per customer per period from their
-- first period), computed from the sparse activity runs: only the spine rows in which a customer
-- can be in a base are formed. A segment has a row for every period from its earliest customer's
-- first period, as the spine gives it, zeros where nobody of the segment is in a base.
{%- set bases = var('retention_base_definitions', ['active_in_period']) %}
{%- for b in bases %}
    {%- if b not in ['active_in_period', 'active_window'] %}
        {{ exceptions.raise_compiler_error("unknown retention base definition: " ~ b) }}
    {%- endif %}
{%- endfor %}
{%- if 'active_in_period' not in bases %}
    {{ exceptions.raise_compiler_error(
        "var('retention_base_definitions') must include active_in_period: the activity lifecycle, the "
        ~ "run's headline and the marts gate read it (add active_window beside it)") }}
{%- endif %}
{%- set window_days = var('active_window_days') if 'active_window' in bases else none %}
{%- set segment_types = liucun.retention_segment_types() %}
with all_periods as (

    select * from {{ ref('int_periods') }}

),

periods as (

    select * from all_periods
    where is_complete

),

activity as (

    select * from {{ ref('int_customer_activity_periods') }}

),

segments as (

    select * from {{ ref('int_customer_segments') }}

),

runs as (

    {{ liucun.customer_activity_runs('activity', 'all_periods') }}

),

-- the spine rows that can be in a base at the period's start or end: each active period, the period
-- after it and, for the trailing-window base, the periods of its run whose previous period ended
-- within the window; every other spine row is in no base and adds nothing
base_rows as (

    select
        runs.customer_id,
        periods.period_grain,
        periods.period_start,
        periods.period_end,
        periods.period_index = runs.active_period_index as is_active,
        periods.period_index = runs.first_period_index as is_new,
        {{ liucun.was_active_previous_period('runs', 'periods') }} as was_active_previous_period,
        case when periods.period_index = runs.active_period_index then runs.revenue else 0 end as revenue,
        case
            when periods.period_index = runs.active_period_index
                and runs.previous_active_period_index = runs.active_period_index - 1
                then runs.previous_active_revenue
            when periods.period_index = runs.active_period_index + 1 then runs.revenue
            else 0
        end as previous_revenue
        {%- if window_days is not none %},
        -- days since the last activity at this period's last day, and at the previous period's
        {{ dbt.datediff('runs.last_activity_date', liucun.day_before('periods.period_end'), 'day') }}
            < {{ window_days }} as in_window_at_end,
        case
            when periods.period_index > runs.active_period_index
                then {{ dbt.datediff('runs.last_activity_date', liucun.day_before('periods.period_start'), 'day') }}
                    < {{ window_days }}
            else coalesce({{ dbt.datediff('runs.previous_last_activity_date',
                                          liucun.day_before('periods.period_start'), 'day') }}
                    < {{ window_days }}, false)
        end as in_window_at_start
        {%- endif %}
    from runs
    inner join periods
        on periods.period_grain = runs.period_grain
        and periods.period_index >= runs.active_period_index
        and (runs.next_active_period_index is null or periods.period_index < runs.next_active_period_index)
        and (
            periods.period_index <= runs.active_period_index + 1
            {%- if window_days is not none %}
            or {{ dbt.datediff('runs.last_activity_date', 'periods.period_start', 'day') }} <= {{ window_days }}
            {%- endif %}
        )

),

in_base as (

    {%- for b in bases %}
    select
        customer_id,
        period_grain,
        period_start,
        period_end,
        '{{ b }}' as base_definition,
        is_new,
        revenue,
        previous_revenue,
        {%- if b == 'active_in_period' %}
        is_active as in_end,
        was_active_previous_period as in_start
        {%- else %}
        in_window_at_end as in_end,
        in_window_at_start as in_start
        {%- endif %}
    from base_rows
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

-- the sums per period, base and combination of a customer's segment values: one aggregation over
-- the base rows, then one per segment type over these few rows
segmented as (

    select
        in_base.period_grain,
        in_base.period_start,
        in_base.base_definition,
        {%- for t in segment_types %}
        segments.{{ t }},
        {%- endfor %}
        sum(case when in_base.in_start then 1 else 0 end) as customers_start,
        sum(case when in_base.in_end then 1 else 0 end) as customers_end,
        sum(case when in_base.in_end and in_base.is_new then 1 else 0 end) as customers_new,
        sum(case when in_base.in_start and in_base.in_end then 1 else 0 end) as customers_retained,
        sum(case when in_base.in_start then in_base.previous_revenue else 0 end) as revenue_start,
        sum(case when in_base.in_end then in_base.revenue else 0 end) as revenue_end,
        sum(case when in_base.in_start then in_base.revenue else 0 end) as revenue_retained_net,
        sum(case when in_base.in_start then least(in_base.revenue, in_base.previous_revenue) else 0 end)
            as revenue_retained_gross,
        sum(case when in_base.is_new then 1 else 0 end) as customers_first_active
    from in_base
    inner join segments
        on in_base.customer_id = segments.customer_id
    where in_base.in_start or in_base.in_end or in_base.is_new
    group by
        in_base.period_grain,
        in_base.period_start,
        {%- for t in segment_types %}
        segments.{{ t }},
        {%- endfor %}
        in_base.base_definition

),

counts as (

    {%- for t in ['all'] + segment_types %}
    select
        period_grain,
        period_start,
        '{{ t }}' as segment_type,
        {{ "'all'" if t == 'all' else t }} as segment_value,
        base_definition,
        sum(customers_start) as customers_start,
        sum(customers_end) as customers_end,
        sum(customers_new) as customers_new,
        sum(customers_retained) as customers_retained,
        sum(revenue_start) as revenue_start,
        sum(revenue_end) as revenue_end,
        sum(revenue_retained_net) as revenue_retained_net,
        sum(revenue_retained_gross) as revenue_retained_gross,
        sum(customers_first_active) as customers_first_active
    from segmented
    group by period_grain, period_start{{ '' if t == 'all' else ', ' ~ t }}, base_definition
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

-- every (period, segment) the spine has rows for: the periods from the first period of the segment's
-- earliest customer (each customer's first period is in base_rows, as an active period)
segment_first_periods as (

    select period_grain, segment_type, segment_value, min(period_start) as first_period_start
    from counts
    where customers_first_active > 0
    group by period_grain, segment_type, segment_value

),

grid as (

    {%- for b in bases %}
    select
        periods.period_grain,
        periods.period_start,
        periods.period_end,
        segment_first_periods.segment_type,
        segment_first_periods.segment_value,
        '{{ b }}' as base_definition
    from segment_first_periods
    inner join periods
        on periods.period_grain = segment_first_periods.period_grain
        and periods.period_start >= segment_first_periods.first_period_start
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

final as (

    select
        grid.period_grain,
        grid.period_start,
        grid.period_end,
        true as is_complete,
        grid.segment_type,
        grid.segment_value,
        grid.base_definition,
        cast(coalesce(counts.customers_start, 0) as {{ dbt.type_bigint() }}) as customers_start,
        cast(coalesce(counts.customers_end, 0) as {{ dbt.type_bigint() }}) as customers_end,
        cast(coalesce(counts.customers_new, 0) as {{ dbt.type_bigint() }}) as customers_new,
        cast(coalesce(counts.customers_retained, 0) as {{ dbt.type_bigint() }}) as customers_retained,
        cast(coalesce(counts.revenue_start, 0) as decimal(38, 2)) as revenue_start,
        cast(coalesce(counts.revenue_end, 0) as decimal(38, 2)) as revenue_end,
        cast(coalesce(counts.revenue_retained_net, 0) as decimal(38, 2)) as revenue_retained_net,
        cast(coalesce(counts.revenue_retained_gross, 0) as decimal(38, 2)) as revenue_retained_gross
    from grid
    left join counts
        on grid.period_grain = counts.period_grain
        and grid.period_start = counts.period_start
        and grid.segment_type = counts.segment_type
        and grid.segment_value = counts.segment_value
        and grid.base_definition = counts.base_definition

)

select * from final
