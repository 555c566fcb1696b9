-- One row per cohort type, segment and period_number (key period_grain, cohort_type, segment_type,
-- segment_value, period_number): the mean retention across the cohorts of rpt_cohort_retention
-- whose period k is complete, simple (each cohort's rate counts once) and weighted by cohort size
-- (active / size summed over the cohorts), as PostHog's mean rows (issue #25998): cohorts of 10 at
-- 20 % and 100 at 0 % -> simple 10 %, weighted 1.8 %. The same for the cumulative ("on or after")
-- retention. Doc 'retention_definitions'.
with cells as (

    select * from {{ ref('rpt_cohort_retention') }}
    where is_complete and cohort_size > 0

)

select
    period_grain,
    cohort_type,
    segment_type,
    segment_value,
    period_number,
    cast(count(*) as {{ dbt.type_bigint() }}) as cohorts,
    cast(sum(cohort_size) as {{ dbt.type_bigint() }}) as customers,
    cast(sum(active_customers) as {{ dbt.type_bigint() }}) as active_customers,
    -- each rate as an exact decimal first, so the sum does not depend on the order rows are added in
    -- (doubles summed in parallel differ in the last bits from run to run)
    {{ liucun.ratio('sum(cast(retention_rate as decimal(38, 18)))', 'count(retention_rate)') }}
        as retention_rate_simple_mean,
    {{ liucun.ratio('sum(active_customers)', 'sum(cohort_size)') }} as retention_rate_weighted_mean,
    cast(sum(active_customers_cumulative) as {{ dbt.type_bigint() }}) as active_customers_cumulative,
    {{ liucun.ratio('sum(cast(retention_rate_cumulative as decimal(38, 18)))', 'count(retention_rate_cumulative)') }}
        as retention_rate_cumulative_simple_mean,
    {{ liucun.ratio('sum(active_customers_cumulative)', 'sum(cohort_size)') }}
        as retention_rate_cumulative_weighted_mean
from cells
group by period_grain, cohort_type, segment_type, segment_value, period_number
