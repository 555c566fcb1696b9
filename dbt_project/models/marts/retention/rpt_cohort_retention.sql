-- One row per published grain (var period_grains: day, week, month), cohort type, cohort (the period
-- of its start activity), segment ('all', or the cohort split by var cohort_segment_types) and
-- period_number (0 = the cohort's own period) up to the period holding the as-of date, or up to the
-- grain's horizon (var cohort_horizons: the last period number shown, e.g. day 30); the as-of
-- date's period is flagged incomplete. PostHog's definitions
-- (doc 'retention_definitions'):
--   cohort_type first_time  the customer's first start activity's period (one cohort per customer)
--               recurring   every period with a start activity (a customer in many cohorts)
--   start activity  var cohort_start_activity: purchase (a qualifying purchase, default), event (a
--                   touchpoint event of var activity_event_types), activity (either) or
--                   registration (the CRM registration)
--   return activity var cohort_return_activity: activity (default), purchase or event
--   period 0 counts every cohort member (the start activity); period k >= 1 the members with a
--   return activity k periods later; cumulative ("on or after"): a return at k or any later period
--   up to the as-of date; vs_previous: relative to period k - 1.
{%- set cohort_types = var('cohort_types', ['first_time', 'recurring']) %}
{%- set start_activity = var('cohort_start_activity', 'purchase') %}
{%- set return_activity = var('cohort_return_activity', 'activity') %}
{%- set segment_types = var('cohort_segment_types', ['acquisition_channel']) %}
{%- set horizons = var('cohort_horizons', {'day': 30, 'week': 52, 'month': none}) %}
{%- for g, h in horizons.items() %}{% if g not in ['day', 'week', 'month'] or (h is not none and (h is not number or h < 1)) %}
    {{ exceptions.raise_compiler_error("var('cohort_horizons') maps day, week and month to a period number of 1 or more (or null: every period), not " ~ g ~ ": " ~ h) }}
{%- endif %}{% endfor %}
{%- set grains = liucun.period_grains() %}
{#- the last period number shown at a grain (a grain column): a large number where unlimited -#}
{%- set horizon_of -%}
    case {%- for g in grains %} when {grain} = '{{ g }}' then {{ horizons.get(g) if horizons.get(g) is not none else 1000000 }}{% endfor %} end
{%- endset %}
{%- if cohort_types | length == 0 %}
    {{ exceptions.raise_compiler_error("var('cohort_types') must list first_time, recurring or both") }}
{%- endif %}
{%- for t in cohort_types %}{% if t not in ['first_time', 'recurring'] %}
    {{ exceptions.raise_compiler_error("var('cohort_types') may list first_time and recurring, not " ~ t) }}
{%- endif %}{% endfor %}
{%- if start_activity not in ['purchase', 'event', 'activity', 'registration'] %}
    {{ exceptions.raise_compiler_error("var('cohort_start_activity') must be purchase, event, activity or registration, not " ~ start_activity) }}
{%- endif %}
{%- if return_activity not in ['activity', 'purchase', 'event'] %}
    {{ exceptions.raise_compiler_error("var('cohort_return_activity') must be activity, purchase or event, not " ~ return_activity) }}
{%- endif %}
{%- for t in segment_types %}{% if t not in ['acquisition_channel', 'region', 'first_order_channel'] %}
    {{ exceptions.raise_compiler_error("var('cohort_segment_types') may list acquisition_channel, region and first_order_channel, not " ~ t) }}
{%- endif %}{% endfor %}
with periods as (

    select * from {{ ref('int_periods') }}

),

activity as (

    select * from {{ ref('int_customer_activity_periods') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

starts as (

    -- the periods in which each customer did the start activity, at each grain
    {%- if start_activity == 'registration' %}
    {%- for g in grains %}
    select distinct customers.customer_id, periods.period_grain, periods.period_start
    from customers
    inner join periods
        on periods.period_grain = '{{ g }}'
        and periods.period_start = {{ liucun.period_start(liucun.to_business_date('customers.registered_at'), g) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- else %}
    select customer_id, period_grain, period_start
    from activity
    {%- if start_activity == 'purchase' %}
    where orders > 0
    {%- elif start_activity == 'event' %}
    where events > 0
    {%- endif %}
    {%- endif %}

),

returns as (

    select activity.customer_id, activity.period_grain, periods.period_index, activity.orders, activity.revenue
    from activity
    inner join periods
        on activity.period_grain = periods.period_grain
        and activity.period_start = periods.period_start
    {%- if return_activity == 'purchase' %}
    where activity.orders > 0
    {%- elif return_activity == 'event' %}
    where activity.events > 0
    {%- endif %}

),

cohorts as (

    {%- for t in cohort_types %}
    {%- if t == 'first_time' %}
    select 'first_time' as cohort_type, customer_id, period_grain, min(period_start) as cohort_period_start
    from starts
    group by customer_id, period_grain
    {%- else %}
    select 'recurring' as cohort_type, customer_id, period_grain, period_start as cohort_period_start
    from starts
    {%- endif %}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

cohort_members as (

    select
        cohorts.period_grain,
        cohorts.cohort_type,
        cohorts.customer_id,
        cohorts.cohort_period_start,
        periods.period_index as cohort_period_index,
        'all' as segment_type,
        'all' as segment_value
    from cohorts
    inner join periods
        on cohorts.period_grain = periods.period_grain
        and cohorts.cohort_period_start = periods.period_start
    {%- for t in segment_types %}
    union all
    select
        cohorts.period_grain,
        cohorts.cohort_type,
        cohorts.customer_id,
        cohorts.cohort_period_start,
        periods.period_index,
        '{{ t }}',
        coalesce(customers.{{ t }}, 'unknown')
    from cohorts
    inner join periods
        on cohorts.period_grain = periods.period_grain
        and cohorts.cohort_period_start = periods.period_start
    left join customers on cohorts.customer_id = customers.customer_id
    {%- endfor %}

),

cohort_sizes as (

    select
        period_grain, cohort_type, cohort_period_start, cohort_period_index, segment_type, segment_value,
        count(*) as cohort_size
    from cohort_members
    group by period_grain, cohort_type, cohort_period_start, cohort_period_index, segment_type, segment_value

),

grid as (

    select
        cohort_sizes.*,
        periods.period_start,
        periods.is_complete,
        periods.period_index - cohort_sizes.cohort_period_index as period_number
    from cohort_sizes
    inner join periods
        on periods.period_grain = cohort_sizes.period_grain
        and periods.period_index >= cohort_sizes.cohort_period_index
        and periods.period_index - cohort_sizes.cohort_period_index
            <= {{ horizon_of | replace('{grain}', 'periods.period_grain') }}

),

member_returns as (

    -- each member's return activity from the cohort's period to the horizon, with its period number
    select
        cohort_members.period_grain,
        cohort_members.cohort_type,
        cohort_members.cohort_period_start,
        cohort_members.segment_type,
        cohort_members.segment_value,
        returns.period_index - cohort_members.cohort_period_index as period_number,
        returns.orders,
        returns.revenue
    from cohort_members
    inner join returns
        on cohort_members.customer_id = returns.customer_id
        and cohort_members.period_grain = returns.period_grain
        and returns.period_index >= cohort_members.cohort_period_index
        and returns.period_index - cohort_members.cohort_period_index
            <= {{ horizon_of | replace('{grain}', 'returns.period_grain') }}

),

cohort_activity as (

    select
        period_grain, cohort_type, cohort_period_start, segment_type, segment_value, period_number,
        count(*) as returning_customers,
        sum(orders) as orders,
        sum(revenue) as revenue
    from member_returns
    group by period_grain, cohort_type, cohort_period_start, segment_type, segment_value, period_number

),

last_returns as (

    select customer_id, period_grain, max(period_index) as last_return_index
    from returns
    group by customer_id, period_grain

),

cohort_last_periods as (

    select period_grain, max(period_index) as last_period_index
    from periods
    group by period_grain

),

member_furthest as (

    -- each member's furthest period number with a return (0: never after the cohort period; a return
    -- beyond the horizon counts at the horizon: "on or after" it)
    select
        cohort_members.period_grain, cohort_members.cohort_type, cohort_members.cohort_period_start,
        cohort_members.segment_type, cohort_members.segment_value,
        least(
            greatest(coalesce(last_returns.last_return_index, 0) - cohort_members.cohort_period_index, 0),
            {{ horizon_of | replace('{grain}', 'cohort_members.period_grain') }},
            cohort_last_periods.last_period_index - cohort_members.cohort_period_index
        ) as furthest
    from cohort_members
    inner join cohort_last_periods on cohort_members.period_grain = cohort_last_periods.period_grain
    left join last_returns
        on cohort_members.customer_id = last_returns.customer_id
        and cohort_members.period_grain = last_returns.period_grain

),

furthest_returns as (

    select period_grain, cohort_type, cohort_period_start, segment_type, segment_value, furthest,
           count(*) as members
    from member_furthest
    group by period_grain, cohort_type, cohort_period_start, segment_type, segment_value, furthest

),

joined as (

    select
        grid.period_grain,
        grid.cohort_type,
        grid.cohort_period_start,
        grid.segment_type,
        grid.segment_value,
        grid.period_number,
        grid.period_start,
        grid.is_complete,
        grid.cohort_size,
        -- period 0 counts every member (PostHog); later periods the members who returned
        case when grid.period_number = 0 then grid.cohort_size
             else coalesce(cohort_activity.returning_customers, 0) end as active_customers,
        -- on or after period k: the members whose furthest return is k or later
        case when grid.period_number = 0 then grid.cohort_size
             else sum(coalesce(furthest_returns.members, 0)) over (
                 partition by grid.period_grain, grid.cohort_type, grid.cohort_period_start,
                              grid.segment_type, grid.segment_value
                 order by grid.period_number desc rows between unbounded preceding and current row)
        end as active_customers_cumulative,
        coalesce(cohort_activity.orders, 0) as orders,
        coalesce(cohort_activity.revenue, 0) as revenue
    from grid
    left join cohort_activity on {{ liucun.same_cohort('grid', 'cohort_activity', period_number=true) }}
    left join furthest_returns
        on {{ liucun.same_cohort('grid', 'furthest_returns') }}
        and grid.period_number = furthest_returns.furthest

),

final as (

    select
        period_grain,
        cohort_type,
        cohort_period_start,
        segment_type,
        segment_value,
        cast(period_number as {{ dbt.type_bigint() }}) as period_number,
        '{{ start_activity }}' as start_activity,
        '{{ return_activity }}' as return_activity,
        period_start,
        is_complete,
        cast(cohort_size as {{ dbt.type_bigint() }}) as cohort_size,
        cast(active_customers as {{ dbt.type_bigint() }}) as active_customers,
        {{ liucun.ratio('active_customers', 'cohort_size') }} as retention_rate,
        cast(active_customers_cumulative as {{ dbt.type_bigint() }}) as active_customers_cumulative,
        {{ liucun.ratio('active_customers_cumulative', 'cohort_size') }} as retention_rate_cumulative,
        {{ liucun.ratio('active_customers', 'lag(active_customers) over (partition by period_grain, cohort_type, '
            ~ 'cohort_period_start, segment_type, segment_value order by period_number)') }}
            as retention_rate_vs_previous,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(revenue as decimal(38, 2)) as revenue,
        cast(sum(revenue) over (
            partition by period_grain, cohort_type, cohort_period_start, segment_type, segment_value
            order by period_number rows between unbounded preceding and current row
        ) as decimal(38, 2)) as cumulative_revenue,
        {{ liucun.ratio(
            'sum(revenue) over (partition by period_grain, cohort_type, cohort_period_start, segment_type, '
            ~ 'segment_value order by period_number rows between unbounded preceding and current row)',
            'cohort_size') }} as cumulative_revenue_per_customer
    from joined

)

select * from final
