-- One row per customer with a qualifying purchase on or before the as-of date (int_customer_rfm):
-- days from the first purchase to the first churn (fct_churn_events, churn dated on or before the
-- as-of date), or, for a customer who has not churned by then, to the as-of date (censored: still
-- a customer when observation ends). The groups the survival curves are drawn for ride along:
-- the acquisition cohort (calendar month of the first purchase) and the segments known at
-- acquisition (int_customer_segments; value_tier is not one: it is lifetime revenue, which grows
-- with survival itself). Definitions: doc('survival_definitions').
with rfm as (

    select * from {{ ref('int_customer_rfm') }}

),

churns as (

    select * from {{ ref('fct_churn_events') }}
    where churn_date <= {{ liucun.as_of_date() }}

),

segments as (

    select * from {{ ref('int_customer_segments') }}

),

first_churn as (

    select customer_id, min(churn_date) as first_churn_date
    from churns
    group by customer_id

),

final as (

    select
        rfm.customer_id,
        rfm.first_purchase_date,
        cast({{ dbt.date_trunc('month', 'rfm.first_purchase_date') }} as date) as acquisition_cohort,
        first_churn.first_churn_date,
        first_churn.first_churn_date is not null as churned,
        cast(case
            when first_churn.first_churn_date is not null
            then {{ dbt.datediff('rfm.first_purchase_date', 'first_churn.first_churn_date', 'day') }}
            else rfm.age_days
        end as {{ dbt.type_bigint() }}) as duration_days,
        coalesce(segments.acquisition_channel, 'unknown') as acquisition_channel,
        coalesce(segments.first_order_channel, 'unknown') as first_order_channel,
        coalesce(segments.region, 'unknown') as region
    from rfm
    left join first_churn on rfm.customer_id = first_churn.customer_id
    left join segments on rfm.customer_id = segments.customer_id

)

select * from final
