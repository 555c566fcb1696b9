-- The shifted-beta-geometric renewal model behind rpt_membership_renewals: one row per plan fitted
-- for the as-of date (ml.sbg_fit, flows/models/churn_scoring.py), with the maximum-likelihood
-- parameters, their standard errors and the population's mean churn probability per period. A plan
-- without both a cancellation and a renewal has no row. Run-time facts are left out, as in
-- rpt_bgnbd_fit. Definitions: doc('membership_renewal_definitions').
{%- set as_of = liucun.as_of_date() %}
with fits as (

    select * from {{ source('ml', 'sbg_fit') }}
    where as_of_date = {{ as_of }}

)

select
    cast(as_of_date as date) as as_of_date,
    cast(plan as {{ liucun.type_text() }}) as plan,
    cast(n_memberships as bigint) as n_memberships,
    cast(cancellations as bigint) as cancellations,
    cast(gamma as {{ liucun.type_double() }}) as gamma,
    cast(gamma_se as {{ liucun.type_double() }}) as gamma_se,
    cast(delta as {{ liucun.type_double() }}) as delta,
    cast(delta_se as {{ liucun.type_double() }}) as delta_se,
    cast(gamma as {{ liucun.type_double() }}) / (gamma + delta) as mean_churn_probability,
    cast(churn_probability_sd as {{ liucun.type_double() }}) as churn_probability_sd,
    cast(log_likelihood as {{ liucun.type_double() }}) as log_likelihood,
    cast(converged as boolean) as converged,
    cast(iterations as bigint) as iterations
from fits
