-- One row per business-local calendar month (key month_start) from the first month with MRR to the
-- as-of month: MRR at the start and the end, its movements (new, expansion, contraction, churn,
-- reactivation), the customers behind them, logo churn under the policies set by vars, gross and
-- net MRR churn, the quick ratio, ARPA and LTV, as ChartMogul defines them (doc 'mrr_definitions').
{%- set excludes_joined = var('mrr_logo_churn_excludes_joined_in_period', true) %}
{%- set net_of_reactivations = var('mrr_logo_churn_net_of_reactivations', true) %}
{%- set ltv_months = var('mrr_ltv_churn_trailing_months', 6) | int %}
with customer_months as (

    select * from {{ ref('fct_customer_mrr') }}

),

months as (

    select * from {{ ref('int_mrr_months') }}

),

totals as (

    select
        month_start,
        sum(mrr_start) as mrr_start,
        sum(new_mrr) as new_mrr,
        sum(expansion_mrr) as expansion_mrr,
        sum(contraction_mrr) as contraction_mrr,
        sum(churned_mrr) as churned_mrr,
        sum(reactivation_mrr) as reactivation_mrr,
        sum(mrr_end) as mrr_end,
        sum(case when mrr_start > 0 then 1 else 0 end) as customers_start,
        sum(new_count) as new_customers,
        sum(reactivation_count) as reactivations,
        sum(churn_count) as churns,
        sum(case when mrr_end > 0 then 1 else 0 end) as customers_end,
        sum(case when churn_count > 0
                 {%- if excludes_joined %} and mrr_start > 0{% endif %}
                 {%- if net_of_reactivations %} and mrr_end = 0{% endif %}
                 then 1 else 0 end) as churned_customers
    from customer_months
    group by month_start

),

monthly as (

    select
        months.month_start,
        cast(coalesce(totals.mrr_start, 0) as decimal(18, 2)) as mrr_start,
        cast(coalesce(totals.new_mrr, 0) as decimal(18, 2)) as new_mrr,
        cast(coalesce(totals.expansion_mrr, 0) as decimal(18, 2)) as expansion_mrr,
        cast(coalesce(totals.contraction_mrr, 0) as decimal(18, 2)) as contraction_mrr,
        cast(coalesce(totals.churned_mrr, 0) as decimal(18, 2)) as churned_mrr,
        cast(coalesce(totals.reactivation_mrr, 0) as decimal(18, 2)) as reactivation_mrr,
        cast(coalesce(totals.mrr_end, 0) as decimal(18, 2)) as mrr_end,
        cast(coalesce(totals.customers_start, 0) as {{ dbt.type_bigint() }}) as customers_start,
        cast(coalesce(totals.new_customers, 0) as {{ dbt.type_bigint() }}) as new_customers,
        cast(coalesce(totals.reactivations, 0) as {{ dbt.type_bigint() }}) as reactivations,
        cast(coalesce(totals.churns, 0) as {{ dbt.type_bigint() }}) as churns,
        cast(coalesce(totals.customers_end, 0) as {{ dbt.type_bigint() }}) as customers_end,
        cast(coalesce(totals.churned_customers, 0) as {{ dbt.type_bigint() }}) as churned_customers,
        months.is_complete
    from months
    left join totals on months.month_start = totals.month_start

),

rates as (

    select
        monthly.*,
        {{ liucun.ratio('churned_customers', 'customers_start') }} as logo_churn_rate,
        {{ liucun.ratio('churned_mrr + contraction_mrr', 'mrr_start') }} as gross_mrr_churn_rate,
        {{ liucun.ratio('churned_mrr + contraction_mrr - expansion_mrr - reactivation_mrr', 'mrr_start') }}
            as net_mrr_churn_rate,
        {{ liucun.ratio('new_mrr + expansion_mrr + reactivation_mrr', 'churned_mrr + contraction_mrr') }}
            as quick_ratio,
        {{ liucun.ratio('mrr_end', 'customers_end') }} as arpa
    from monthly

),

with_trailing as (

    select
        rates.*,
        -- ChartMogul's LTV: ARPA over the average logo churn rate of the previous months
        -- (as exact decimals: a sum of doubles may differ in the last bits with the order of addition)
        cast(sum(cast(logo_churn_rate as decimal(38, 18))) over (
            order by month_start rows between {{ ltv_months }} preceding and 1 preceding
        ) as {{ liucun.type_double() }}) / nullif(count(logo_churn_rate) over (
            order by month_start rows between {{ ltv_months }} preceding and 1 preceding
        ), 0) as trailing_logo_churn_rate,
        count(logo_churn_rate) over (
            order by month_start rows between {{ ltv_months }} preceding and 1 preceding
        ) as trailing_churn_months
    from rates

)

select
    month_start,
    mrr_start,
    new_mrr,
    expansion_mrr,
    contraction_mrr,
    churned_mrr,
    reactivation_mrr,
    mrr_end,
    cast(new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr - churned_mrr as decimal(18, 2))
        as net_new_mrr,
    customers_start,
    new_customers,
    reactivations,
    churns,
    customers_end,
    churned_customers,
    logo_churn_rate,
    gross_mrr_churn_rate,
    net_mrr_churn_rate,
    quick_ratio,
    arpa,
    trailing_logo_churn_rate,
    cast(trailing_churn_months as {{ dbt.type_bigint() }}) as trailing_churn_months,
    case when trailing_logo_churn_rate > 0 then arpa / trailing_logo_churn_rate end as ltv,
    is_complete
from with_trailing
