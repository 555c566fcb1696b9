-- The Gamma-Gamma spend model behind the expected purchase values of fct_customer_bgnbd_scores and
-- fct_churn_risk: one row per fit (the as-of date's), with the maximum-likelihood parameters, their
-- standard errors, the population's mean purchase value and the check of the model's assumption
-- (ml.gamma_gamma_fit, flows/models/churn_scoring.py). Empty when no model was fitted for the as-of
-- date. Run-time facts are left out, as in rpt_bgnbd_fit. Definitions: doc('risk_definitions').
{%- set as_of = liucun.as_of_date() %}
with fits as (

    select * from {{ source('ml', 'gamma_gamma_fit') }}
    where as_of_date = {{ as_of }}

)

select
    cast(as_of_date as date) as as_of_date,
    cast(n_customers as bigint) as n_customers,
    cast(p as {{ liucun.type_double() }}) as p,
    cast(p_se as {{ liucun.type_double() }}) as p_se,
    cast(q as {{ liucun.type_double() }}) as q,
    cast(q_se as {{ liucun.type_double() }}) as q_se,
    cast(gamma as {{ liucun.type_double() }}) as gamma,
    cast(gamma_se as {{ liucun.type_double() }}) as gamma_se,
    cast(population_mean_purchase_value as {{ liucun.type_double() }}) as population_mean_purchase_value,
    cast(spend_frequency_correlation as {{ liucun.type_double() }}) as spend_frequency_correlation,
    cast(log_likelihood as {{ liucun.type_double() }}) as log_likelihood,
    cast(converged as boolean) as converged,
    cast(iterations as bigint) as iterations
from fits
