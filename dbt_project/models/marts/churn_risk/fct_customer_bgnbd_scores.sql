-- One row per customer with a qualifying purchase on or before the as-of date (int_customer_rfm):
-- the BG/NBD model's P(alive) and expected purchases with their 95 % intervals, and the Gamma-Gamma
-- model's expected purchase value and expected revenue, as the pipeline scored them
-- (ml.customer_bgnbd_scores, flows/models/churn_scoring.py). fct_churn_risk shows these
-- scores for the active and dormant customers only; this mart publishes them for everyone the
-- model scored. The fitted parameters are in rpt_bgnbd_fit and rpt_gamma_gamma_fit (join on as_of_date).
-- Empty when no model was fitted for the as-of date. Definitions: doc('risk_definitions').
{%- set as_of = liucun.as_of_date() %}
with scores as (

    select * from {{ source('ml', 'customer_bgnbd_scores') }}
    where as_of_date = {{ as_of }}

)

select
    cast(customer_id as {{ liucun.type_text() }}) as customer_id,
    cast(as_of_date as date) as as_of_date,
    cast(frequency as bigint) as repeat_purchase_days,
    cast(recency_days as bigint) as first_to_last_purchase_days,
    cast(age_days as bigint) as days_since_first_purchase,
    cast(p_alive as {{ liucun.type_double() }}) as p_alive,
    cast(p_alive_ci_low as {{ liucun.type_double() }}) as p_alive_ci_low,
    cast(p_alive_ci_high as {{ liucun.type_double() }}) as p_alive_ci_high,
    cast(expected_purchases_90d as {{ liucun.type_double() }}) as expected_purchases_90d,
    cast(expected_purchases_90d_ci_low as {{ liucun.type_double() }}) as expected_purchases_90d_ci_low,
    cast(expected_purchases_90d_ci_high as {{ liucun.type_double() }}) as expected_purchases_90d_ci_high,
    cast(mean_repeat_purchase_value as {{ liucun.type_double() }}) as mean_repeat_purchase_value,
    cast(expected_purchase_value as {{ liucun.type_double() }}) as expected_purchase_value,
    cast(expected_revenue_90d as {{ liucun.type_double() }}) as expected_revenue_90d
from scores
