-- One row per customer per complete period from the period they were first identified (first
-- touchpoint or purchase) to the last complete period: the business lifecycle stage at the
-- period's last day (prospect, new, growth, mature, dormant, churned), the previous period's
-- stage, and whether a dormant or churned customer bought again (reactivated).
-- A daily build recomputes only the customers whose identity or records changed, until a period
-- completes (macros/incremental.sql).
-- depends_on: {{ ref('int_identifiers_clustered') }}
{{ liucun.customer_absorbing_config(periods=true) }}
with periods as (

    select * from {{ ref('int_periods') }}
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

spine as (

    select
        starts.customer_id,
        periods.period_grain,
        periods.period_start,
        periods.period_end,
        cast({{ dbt.dateadd('day', -1, 'periods.period_end') }} as date) as period_last_day
    from starts
    inner join periods
        on periods.period_start >= starts.first_period_start

),

joined as (

    select
        spine.*,
        coalesce(period_purchases.purchases, 0) as purchases,
        coalesce(period_purchases.revenue, 0) as revenue,
        first_purchases.first_purchase_date,
        first_purchases.first_order_value,
        first_purchases.second_purchase_date,
        coalesce(first_purchases.is_referred, false) as is_referred,
        max(period_purchases.last_purchase_date) over (
            partition by spine.customer_id order by spine.period_start
            rows between unbounded preceding and current row
        ) as last_purchase_date,
        max(period_cancellations.last_cancelled_on) over (
            partition by spine.customer_id order by spine.period_start
            rows between unbounded preceding and current row
        ) as last_cancelled_on
    from spine
    left join first_purchases on spine.customer_id = first_purchases.customer_id
    left join period_purchases
        on spine.customer_id = period_purchases.customer_id
        and spine.period_start = period_purchases.period_start
    left join period_cancellations
        on spine.customer_id = period_cancellations.customer_id
        and spine.period_start = period_cancellations.period_start

),

measured as (

    select
        *,
        {{ dbt.datediff('first_purchase_date', 'period_last_day', 'day') }} as days_since_first_purchase,
        {{ dbt.datediff('last_purchase_date', 'period_last_day', 'day') }} as days_since_last_purchase,
        cast({{ dbt.dateadd('month', var('lifecycle_growth_months'), 'first_purchase_date') }} as date)
            as growth_ends_on
    from joined

),

staged as (

    select
        *,
        case
            when last_purchase_date is null then 'prospect'
            when last_cancelled_on is not null and last_cancelled_on >= last_purchase_date then 'churned'
            when days_since_last_purchase >= {{ var('lifecycle_churned_days') }} then 'churned'
            when days_since_last_purchase >= {{ var('lifecycle_dormant_days') }} then 'dormant'
            when days_since_first_purchase < {{ var('lifecycle_new_days') }} then 'new'
            when period_last_day < growth_ends_on then 'growth'
            else 'mature'
        end as stage
    from measured

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
        lag(stage) over (partition by customer_id order by period_start) as previous_stage,
        coalesce(lag(stage) over (partition by customer_id order by period_start) in ('dormant', 'churned')
            and purchases > 0, false) as is_reactivated,
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
