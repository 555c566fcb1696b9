-- One row per customer active (stage new, growth, mature) or dormant in the last complete
-- lifecycle period: churn-risk signals at the as-of date, the BG/NBD probability of being alive
-- and expected purchases in the next 90 days (ml.customer_bgnbd_scores, fitted by the pipeline on
-- int_customer_rfm), the Gamma-Gamma expected purchase value and the margin at risk, a risk tier
-- with human-readable reasons and whether the customer is worth recalling. Definitions:
-- doc('risk_definitions').
{%- set n_trend = var('churn_risk_trend_periods', 3) | int %}
{%- set window = var('churn_risk_window_days', 90) | int %}
{%- set p_alive_tiers = var('churn_risk_p_alive_thresholds', {'high': 0.3, 'medium': 0.6}) %}
{%- set signal_tiers = var('churn_risk_signal_thresholds', {'high': 3, 'medium': 1}) %}
{%- set margin = var('recall_gross_margin_rate', 0.45) %}
{%- set min_margin_at_risk = var('recall_min_margin_at_risk', 10) %}
{%- set as_of = liucun.as_of_date() %}
{%- set window_start = 'cast(' ~ dbt.dateadd('day', -window + 1, as_of) ~ ' as date)' %}
{%- set prior_start = 'cast(' ~ dbt.dateadd('day', -2 * window + 1, as_of) ~ ' as date)' %}
with lifecycle as (

    select * from {{ ref('fct_customer_lifecycle') }}

),

rfm as (

    select * from {{ ref('int_customer_rfm') }}

),

scores as (

    select * from {{ source('ml', 'customer_bgnbd_scores') }}
    where as_of_date = {{ as_of }}

),

id_map as (

    select * from {{ ref('int_identifiers_mapped_to_customers') }}

),

events as (

    select * from {{ ref('stg_tracking__events') }}

),

tickets as (

    select * from {{ ref('stg_service__tickets') }}

),

surveys as (

    select * from {{ ref('stg_surveys__responses') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

-- the population: active or dormant at the end of the last complete period
population as (

    select customer_id, period_start, stage
    from lifecycle
    where period_start = (select max(period_start) from lifecycle)
      and stage in ('new', 'growth', 'mature', 'dormant')

),

-- the last n_trend + 1 complete periods, 1 = the last: a customer's rows are every complete period
-- from their first, so their last rows are these periods (no window over every customer's rows)
last_periods as (

    select period_start, row_number() over (order by period_start desc) as recency_rank
    from {{ ref('int_periods') }}
    where is_complete and {{ liucun.at_period_grain() }}

),

recent_periods as (

    select
        lifecycle.customer_id,
        lifecycle.purchases,
        lifecycle.revenue,
        last_periods.recency_rank
    from lifecycle
    inner join last_periods
        on lifecycle.period_start = last_periods.period_start
    where last_periods.recency_rank <= {{ n_trend + 1 }}
      and lifecycle.customer_id in (select customer_id from population)

),

trend_values as (

    select
        customer_id,
        {%- for k in range(1, n_trend + 2) %}
        max(case when recency_rank = {{ k }} then purchases end) as purchases_{{ k }},
        max(case when recency_rank = {{ k }} then revenue end) as revenue_{{ k }}{{ ',' if not loop.last }}
        {%- endfor %}
    from recent_periods
    where recency_rank <= {{ n_trend + 1 }}
    group by customer_id

),

-- consecutive period-over-period declines ending at the last period (0 .. n_trend)
trends as (

    select
        customer_id,
        purchases_1 as purchases_last_period,
        revenue_1 as revenue_last_period,
        {%- for measure in ['purchases', 'revenue'] %}
        case
            {%- for k in range(1, n_trend + 1) %}
            when not coalesce({{ measure }}_{{ k }} < {{ measure }}_{{ k + 1 }}, false) then {{ k - 1 }}
            {%- endfor %}
            else {{ n_trend }}
        end as {{ measure }}_declines{{ ',' if not loop.last }}
        {%- endfor %}
    from trend_values

),

-- touchpoints of the customer: an event through any of its identifiers, a ticket through its
-- CRM id or phone; whether an event is in the last window or the one before
customer_events as (

    select
        {{ liucun.event_customer_id() }} as customer_id,
        {{ liucun.business_date_at_least('events.event_at', window_start) }} as in_last_window
    from events
    {{ liucun.event_customer_joins('events', 'id_map') }}
    where {{ liucun.business_date_between('events.event_at', prior_start, as_of) }}

),

customer_tickets as (

    select
        {{ liucun.customer_id_from(['crm_id', 'phone']) }} as customer_id,
        tickets.opened_at,
        tickets.resolved_at,
        tickets.satisfaction_score,
        {{ liucun.to_business_date('tickets.opened_at') }} as opened_on
    from tickets
    {{ liucun.customer_joins('tickets', 'id_map', ['crm_id', 'phone']) }}
    where {{ liucun.to_business_date('tickets.opened_at') }} <= {{ as_of }}

),

touches as (

    select customer_id, in_last_window from customer_events
    union all
    select customer_id, opened_on >= {{ window_start }} from customer_tickets
    where opened_on >= {{ prior_start }}

),

interactions as (

    select
        customer_id,
        sum(case when in_last_window then 1 else 0 end) as interactions_last,
        sum(case when in_last_window then 0 else 1 end) as interactions_prior
    from touches
    where customer_id is not null
    group by customer_id

),

-- satisfaction: ticket scores (at resolution) and CSAT survey responses, 1-5
satisfaction_scores as (

    select customer_id, coalesce(resolved_at, opened_at) as scored_at, satisfaction_score as score
    from customer_tickets
    where satisfaction_score is not null
      and {{ liucun.to_business_date('coalesce(resolved_at, opened_at)') }} <= {{ as_of }}
    union all
    select id_map.customer_id, surveys.responded_at, surveys.score
    from surveys
    inner join id_map on id_map.identifier_type = 'crm_id' and id_map.identifier_value = surveys.crm_id
    where surveys.survey_type = 'csat' and surveys.score is not null
      and {{ liucun.to_business_date('surveys.responded_at') }} <= {{ as_of }}

),

last_satisfaction as (

    select customer_id, score, scored_at
    from (
        select
            customer_id,
            score,
            scored_at,
            row_number() over (partition by customer_id order by scored_at desc, score) as rn
        from satisfaction_scores
        where customer_id is not null
    ) as ranked
    where rn = 1

),

-- tickets still open at the as-of date
complaints as (

    select customer_id, count(*) as open_complaints
    from customer_tickets
    where customer_id is not null
      and (resolved_at is null or {{ liucun.to_business_date('resolved_at') }} > {{ as_of }})
    group by customer_id

),

payment_failures as (

    select id_map.customer_id, count(*) as payment_failures
    from invoices
    inner join id_map on id_map.identifier_type = 'crm_id' and id_map.identifier_value = invoices.crm_id
    where invoices.status = 'failed'
      and {{ liucun.business_date_between('invoices.attempted_at', window_start, as_of) }}
    group by id_map.customer_id

),

joined as (

    select
        population.customer_id,
        population.stage as lifecycle_stage,
        population.period_start as lifecycle_period_start,
        rfm.first_purchase_date,
        rfm.last_purchase_date,
        {{ dbt.datediff('rfm.last_purchase_date', as_of, 'day') }} as recency_days,
        rfm.frequency as repeat_purchase_days,
        trends.purchases_last_period,
        trends.purchases_declines,
        trends.revenue_last_period,
        trends.revenue_declines as arpu_declines,
        coalesce(interactions.interactions_last, 0) as interactions_last_window,
        coalesce(interactions.interactions_prior, 0) as interactions_prior_window,
        last_satisfaction.score as last_satisfaction_score,
        last_satisfaction.scored_at as last_satisfaction_at,
        coalesce(complaints.open_complaints, 0) as open_complaints,
        coalesce(payment_failures.payment_failures, 0) as payment_failures,
        scores.p_alive,
        scores.p_alive_ci_low,
        scores.p_alive_ci_high,
        scores.expected_purchases_90d,
        scores.expected_purchases_90d_ci_low,
        scores.expected_purchases_90d_ci_high,
        scores.expected_purchase_value,
        scores.expected_revenue_90d
    from population
    left join rfm on population.customer_id = rfm.customer_id
    left join trends on population.customer_id = trends.customer_id
    left join interactions on population.customer_id = interactions.customer_id
    left join last_satisfaction on population.customer_id = last_satisfaction.customer_id
    left join complaints on population.customer_id = complaints.customer_id
    left join payment_failures on population.customer_id = payment_failures.customer_id
    left join scores on population.customer_id = scores.customer_id

),

flagged as (

    select
        *,
        arpu_declines >= {{ var('churn_risk_min_declines', 2) }} as flag_arpu,
        purchases_declines >= {{ var('churn_risk_min_declines', 2) }} as flag_purchases,
        interactions_prior_window > 0
            and interactions_last_window <= (1 - {{ var('churn_risk_interaction_drop', 0.5) }}) * interactions_prior_window
            as flag_interactions,
        coalesce(last_satisfaction_score <= {{ var('churn_risk_low_satisfaction', 2) }}, false) as flag_satisfaction,
        open_complaints > 0 as flag_complaints,
        payment_failures > 0 as flag_payments,
        lifecycle_stage = 'dormant' as flag_dormant
    from joined

),

counted as (

    select
        *,
        case when flag_arpu then 1 else 0 end + case when flag_purchases then 1 else 0 end
        + case when flag_interactions then 1 else 0 end + case when flag_satisfaction then 1 else 0 end
        + case when flag_complaints then 1 else 0 end + case when flag_payments then 1 else 0 end
        + case when flag_dormant then 1 else 0 end as risk_signals,
        -- the gross margin a customer active for the next 90 days would bring, times the chance they
        -- are already gone: (1 - P(alive)) x value x E[purchases | alive] x margin rate
        case when p_alive > 0 and expected_purchase_value is not null
             then round(cast((1 - p_alive) * expected_purchase_value * expected_purchases_90d / p_alive
                             * {{ margin }} as decimal(38, 10)), 2)
        end as margin_at_risk_90d
    from flagged

),

final as (

    select
        customer_id,
        {{ as_of }} as as_of_date,
        lifecycle_stage,
        lifecycle_period_start,
        first_purchase_date,
        last_purchase_date,
        cast(recency_days as {{ dbt.type_bigint() }}) as recency_days,
        cast(repeat_purchase_days as {{ dbt.type_bigint() }}) as repeat_purchase_days,
        cast(purchases_last_period as {{ dbt.type_bigint() }}) as purchases_last_period,
        cast(purchases_declines as {{ dbt.type_bigint() }}) as purchases_declines,
        cast(revenue_last_period as decimal(18, 2)) as revenue_last_period,
        cast(arpu_declines as {{ dbt.type_bigint() }}) as arpu_declines,
        cast(interactions_last_window as {{ dbt.type_bigint() }}) as interactions_last_window,
        cast(interactions_prior_window as {{ dbt.type_bigint() }}) as interactions_prior_window,
        {{ liucun.ratio('interactions_last_window - interactions_prior_window', 'interactions_prior_window') }}
            as interaction_change,
        cast(last_satisfaction_score as {{ dbt.type_bigint() }}) as last_satisfaction_score,
        cast(last_satisfaction_at as {{ dbt.type_timestamp() }}) as last_satisfaction_at,
        cast(open_complaints as {{ dbt.type_bigint() }}) as open_complaints,
        cast(payment_failures as {{ dbt.type_bigint() }}) as payment_failures,
        cast(p_alive as {{ liucun.type_double() }}) as p_alive,
        cast(p_alive_ci_low as {{ liucun.type_double() }}) as p_alive_ci_low,
        cast(p_alive_ci_high as {{ liucun.type_double() }}) as p_alive_ci_high,
        cast(expected_purchases_90d as {{ liucun.type_double() }}) as expected_purchases_90d,
        cast(expected_purchases_90d_ci_low as {{ liucun.type_double() }}) as expected_purchases_90d_ci_low,
        cast(expected_purchases_90d_ci_high as {{ liucun.type_double() }}) as expected_purchases_90d_ci_high,
        cast(expected_purchase_value as {{ liucun.type_double() }}) as expected_purchase_value,
        cast(expected_revenue_90d as {{ liucun.type_double() }}) as expected_revenue_90d,
        cast(margin_at_risk_90d as decimal(18, 2)) as margin_at_risk_90d,
        cast(risk_signals as {{ dbt.type_bigint() }}) as risk_signals,
        case
            when p_alive < {{ p_alive_tiers['high'] }} or risk_signals >= {{ signal_tiers['high'] }} then 'high'
            when p_alive < {{ p_alive_tiers['medium'] }} or risk_signals >= {{ signal_tiers['medium'] }} then 'medium'
            else 'low'
        end as risk_tier,
        coalesce(nullif(concat_ws('; ',
            case when p_alive is null then 'no BG/NBD score (model not fitted for this as-of date)'
                 when p_alive < {{ p_alive_tiers['medium'] }}
                 then 'P(alive) ' || cast(cast(p_alive as decimal(10, 2)) as {{ dbt.type_string() }}) end,
            case when flag_dormant
                 then 'no purchase for ' || cast(recency_days as {{ dbt.type_string() }}) || ' days' end,
            case when flag_arpu
                 then 'ARPU down ' || cast(arpu_declines as {{ dbt.type_string() }}) || ' periods in a row' end,
            case when flag_purchases
                 then 'purchases down ' || cast(purchases_declines as {{ dbt.type_string() }}) || ' periods in a row' end,
            case when flag_interactions
                 then 'interactions down '
                     || cast(cast(100.0 * (interactions_prior_window - interactions_last_window)
                                  / interactions_prior_window as decimal(10, 0)) as {{ dbt.type_string() }})
                     || '% (' || cast(interactions_prior_window as {{ dbt.type_string() }}) || ' -> '
                     || cast(interactions_last_window as {{ dbt.type_string() }}) || ' in {{ window }} days)' end,
            case when flag_satisfaction
                 then 'last satisfaction score ' || cast(last_satisfaction_score as {{ dbt.type_string() }}) || '/5' end,
            case when flag_complaints
                 then cast(open_complaints as {{ dbt.type_string() }}) || ' unresolved complaint'
                     || case when open_complaints > 1 then 's' else '' end end,
            case when flag_payments
                 then cast(payment_failures as {{ dbt.type_string() }}) || ' failed payment'
                     || case when payment_failures > 1 then 's' else '' end || ' in {{ window }} days' end
        ), ''), 'no risk signals') as risk_reasons
    from counted

),

recommended as (

    select
        final.*,
        case
            when risk_tier = 'low' then 'not_at_risk'
            when margin_at_risk_90d is null then 'no_value_model'
            when margin_at_risk_90d >= {{ min_margin_at_risk }} then 'margin_at_risk_at_least_min'
            else 'margin_at_risk_below_min'
        end as recall_recommendation_reason
    from final

)

select
    recommended.*,
    case recall_recommendation_reason
        when 'margin_at_risk_at_least_min' then 'worth_recalling'
        when 'no_value_model' then 'insufficient_data'
        else 'not_worth_recalling'
    end as recall_recommendation
from recommended
