-- One row per customer per complete period from the period they were first identified (first
-- touchpoint or purchase) to the last complete period: the business lifecycle stage at the
-- period's last day (prospect, new, growth, mature, dormant, churned), the previous period's
-- stage, and whether a dormant or churned customer bought again (reactivated).
-- A daily build recomputes only the customers whose identity or records changed, until a period
-- completes (macros/incremental.sql).
-- depends_on: {{ ref('int_identifiers_clustered') }}
{{ liucun.customer_absorbing_config(periods=true) }}
with all_periods as (

    select * from {{ ref('int_periods') }}
    where {{ liucun.at_period_grain() }}

),

periods as (

    select * from all_periods
    where is_complete

),

customers as (

    select * from {{ ref('dim_customers') }}
    {{- liucun.only_changed_customers() }}

),

orders as (

    select * from {{ ref('int_orders_attributed') }}
    where customer_id is not null
      and net_amount > {{ var('min_qualifying_amount') }}
      {{- liucun.only_changed_customers('and') }}

),

id_map as (

    select * from {{ ref('int_identifiers_mapped_to_customers') }}
    where identifier_type = 'crm_id'
    {{- liucun.only_changed_customers('and') }}

),

sessions as (

    select * from {{ ref('stg_cancellation__sessions') }}

),

memberships as (

    select * from {{ ref('stg_billing__memberships') }}

),

-- completed cancellations: a cancellation session that ended in 'cancelled', or a membership
-- that ended for a reason in var('lifecycle_cancellation_end_reasons')
cancellations as (

    select
        id_map.customer_id,
        {{ liucun.to_business_date('coalesce(sessions.ended_at, sessions.started_at)') }} as cancelled_on
    from sessions
    inner join id_map on sessions.crm_id = id_map.identifier_value
    where sessions.outcome = 'cancelled'
    union all
    select
        id_map.customer_id,
        {{ liucun.to_business_date('memberships.ended_at') }} as cancelled_on
    from memberships
    inner join id_map on memberships.crm_id = id_map.identifier_value
    where memberships.ended_at is not null
      and memberships.end_reason in (
        {%- for r in var('lifecycle_cancellation_end_reasons', ['cancelled']) -%}
        '{{ r }}'{% if not loop.last %}, {% endif %}
        {%- endfor -%})

),

ranked_orders as (

    select
        customer_id,
        order_date,
        net_amount,
        referral_code,
        row_number() over (partition by customer_id order by ordered_at, order_id) as order_number
    from orders

),

first_purchases as (

    select
        firsts.customer_id,
        firsts.order_date as first_purchase_date,
        firsts.net_amount as first_order_value,
        firsts.referral_code is not null as is_referred,
        seconds.order_date as second_purchase_date
    from ranked_orders as firsts
    left join ranked_orders as seconds
        on firsts.customer_id = seconds.customer_id and seconds.order_number = 2
    where firsts.order_number = 1

),

period_purchases as (

    select
        customer_id,
        {{ liucun.period_start('order_date') }} as period_start,
        count(*) as purchases,
        sum(net_amount) as revenue,
        max(order_date) as last_purchase_date
    from orders
    group by customer_id, {{ liucun.period_start('order_date') }}

),

period_cancellations as (

    select
        customer_id,
        {{ liucun.period_start('cancelled_on') }} as period_start,
        max(cancelled_on) as last_cancelled_on
    from cancellations
    group by customer_id, {{ liucun.period_start('cancelled_on') }}

),

starts as (

    select
        customers.customer_id,
        {{ liucun.period_start(
            'case when first_purchases.first_purchase_date is null then '
            ~ liucun.to_business_date('customers.first_seen_at')
            ~ ' when customers.first_seen_at is null then first_purchases.first_purchase_date'
            ~ ' when ' ~ liucun.to_business_date('customers.first_seen_at')
            ~ ' < first_purchases.first_purchase_date then ' ~ liucun.to_business_date('customers.first_seen_at')
            ~ ' else first_purchases.first_purchase_date end') }} as first_period_start
    from customers
    left join first_purchases on customers.customer_id = first_purchases.customer_id

),

-- The stage at a period's last day depends only on the last purchase and the last cancellation up
-- to then (and the customer's first purchase). They change only in "marked" periods: the first
-- period of the spine, a period with a purchase, a period with a cancellation. Each marked period
-- carries its values to the periods up to the next mark, so no window runs over the whole spine.
first_period as (

    select min(period_start) as period_start from all_periods

),

marks as (

    select
        starts.customer_id,
        case
            when starts.first_period_start < first_period.period_start then first_period.period_start
            else starts.first_period_start
        end as period_start,
        0 as purchases,
        cast(0 as decimal(18, 2)) as revenue,
        cast(null as date) as last_purchase_date,
        cast(null as date) as last_cancelled_on
    from starts
    cross join first_period
    union all
    select customer_id, period_start, purchases, revenue, last_purchase_date, cast(null as date)
    from period_purchases
    union all
    select customer_id, period_start, 0, 0, cast(null as date), last_cancelled_on
    from period_cancellations

),

marked_periods as (

    select
        marks.customer_id,
        all_periods.period_index,
        sum(marks.purchases) as purchases,
        sum(marks.revenue) as revenue,
        max(marks.last_purchase_date) as last_purchase_in_period,
        max(marks.last_cancelled_on) as last_cancelled_in_period
    from marks
    inner join starts
        on marks.customer_id = starts.customer_id
    inner join all_periods
        on marks.period_start = all_periods.period_start
    where marks.period_start >= starts.first_period_start
    group by marks.customer_id, all_periods.period_index

),

runs as (

    select
        customer_id,
        period_index as mark_index,
        purchases,
        revenue,
        max(last_purchase_in_period) over (
            partition by customer_id order by period_index
            rows between unbounded preceding and current row
        ) as last_purchase_date,
        max(last_cancelled_in_period) over (
            partition by customer_id order by period_index
            rows between unbounded preceding and current row
        ) as last_cancelled_on,
        lead(period_index) over (partition by customer_id order by period_index) as next_mark_index,
        min(period_index) over (partition by customer_id) as first_mark_index
    from marked_periods

),

runs_after as (

    select
        *,
        lag(last_purchase_date) over (partition by customer_id order by mark_index)
            as previous_mark_last_purchase_date,
        lag(last_cancelled_on) over (partition by customer_id order by mark_index)
            as previous_mark_last_cancelled_on
    from runs

),

spine as (

    select
        runs_after.customer_id,
        periods.period_grain,
        periods.period_start,
        periods.period_end,
        {{ liucun.day_before('periods.period_end') }} as period_last_day,
        {{ liucun.day_before('periods.period_start') }} as previous_period_last_day,
        periods.period_index = runs_after.first_mark_index as is_first_period,
        case when periods.period_index = runs_after.mark_index then runs_after.purchases else 0 end
            as purchases,
        case when periods.period_index = runs_after.mark_index then runs_after.revenue else 0 end
            as revenue,
        runs_after.last_purchase_date,
        runs_after.last_cancelled_on,
        case
            when periods.period_index = runs_after.mark_index then runs_after.previous_mark_last_purchase_date
            else runs_after.last_purchase_date
        end as previous_last_purchase_date,
        case
            when periods.period_index = runs_after.mark_index then runs_after.previous_mark_last_cancelled_on
            else runs_after.last_cancelled_on
        end as previous_last_cancelled_on
    from runs_after
    inner join periods
        on periods.period_index >= runs_after.mark_index
        and (runs_after.next_mark_index is null or periods.period_index < runs_after.next_mark_index)

),

joined as (

    select
        spine.*,
        first_purchases.first_purchase_date,
        first_purchases.first_order_value,
        first_purchases.second_purchase_date,
        coalesce(first_purchases.is_referred, false) as is_referred,
        cast({{ dbt.dateadd('month', var('lifecycle_growth_months'), 'first_purchases.first_purchase_date') }} as date)
            as growth_ends_on
    from spine
    left join first_purchases on spine.customer_id = first_purchases.customer_id

),

staged as (

    select
        *,
        {{ liucun.lifecycle_stage('last_purchase_date', 'last_cancelled_on', 'first_purchase_date',
                                  'growth_ends_on', 'period_last_day') }} as stage,
        case
            when not is_first_period then
                {{ liucun.lifecycle_stage('previous_last_purchase_date', 'previous_last_cancelled_on',
                                          'first_purchase_date', 'growth_ends_on',
                                          'previous_period_last_day') }}
        end as previous_stage,
        {{ dbt.datediff('last_purchase_date', 'period_last_day', 'day') }} as days_since_last_purchase
    from joined

),

final as (

    select
        customer_id,
        period_grain,
        period_start,
        period_end,
        stage,
        case stage
            when 'prospect' then 'introduction'
            when 'new' then 'introduction'
            else stage
        end as lifecycle_phase,
        case stage
            when 'prospect' then '引入期'
            when 'new' then '引入期'
            when 'growth' then '成长期'
            when 'mature' then '成熟期'
            when 'dormant' then '休眠期'
            else '流失期'
        end as lifecycle_phase_zh,
        previous_stage,
        coalesce(previous_stage in ('dormant', 'churned') and purchases > 0, false) as is_reactivated,
        cast(purchases as {{ dbt.type_bigint() }}) as purchases,
        cast(revenue as decimal(18, 2)) as revenue,
        first_purchase_date,
        last_purchase_date,
        cast(days_since_last_purchase as {{ dbt.type_bigint() }}) as days_since_last_purchase,
        last_cancelled_on,
        coalesce(first_purchase_date >= period_start and first_purchase_date < period_end, false)
            as is_first_purchase_period,
        cast(first_order_value as decimal(18, 2)) as first_order_value,
        second_purchase_date,
        is_referred
    from staged

)

select * from final
