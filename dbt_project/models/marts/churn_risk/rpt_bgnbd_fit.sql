-- The BG/NBD model behind fct_churn_risk and fct_customer_bgnbd_scores: one row per fit (the
-- as-of date's), with the maximum-likelihood parameters, their standard errors and the fit's
-- diagnostics (ml.bgnbd_fit, flows/models/churn_scoring.py), plus the two population means a reader
-- asks for first. Empty when no model was fitted for the as-of date. Run-time facts (when the fit
-- ran, how long it took) are left out: the same input publishes the same row; the publication's
-- time is in audit.publications. Definitions: doc('risk_definitions').
{%- set as_of = liucun.as_of_date() %}
with fits as (

    select * from {{ source('ml', 'bgnbd_fit') }}
    where as_of_date = {{ as_of }}

)

select
    cast(as_of_date as date) as as_of_date,
    cast(n_customers as bigint) as n_customers,
    cast(time_unit as {{ liucun.type_text() }}) as time_unit,
    cast(horizon_days as bigint) as horizon_days,
    cast(r as {{ liucun.type_double() }}) as r,
    cast(r_se as {{ liucun.type_double() }}) as r_se,
    cast(alpha as {{ liucun.type_double() }}) as alpha,
    cast(alpha_se as {{ liucun.type_double() }}) as alpha_se,
    cast(a as {{ liucun.type_double() }}) as a,
    cast(a_se as {{ liucun.type_double() }}) as a_se,
    cast(b as {{ liucun.type_double() }}) as b,
    cast(b_se as {{ liucun.type_double() }}) as b_se,
    cast(r as {{ liucun.type_double() }}) / alpha as mean_purchase_rate_per_day,
    cast(a as {{ liucun.type_double() }}) / (a + b) as mean_dropout_probability,
    cast(log_likelihood as {{ liucun.type_double() }}) as log_likelihood,
    cast(converged as boolean) as converged,
    cast(iterations as bigint) as iterations
from fits
