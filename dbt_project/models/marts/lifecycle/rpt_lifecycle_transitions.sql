-- One row per complete period, previous stage and stage: the customers who moved from one
-- business lifecycle stage to another ('none' = not yet identified in the previous period).
with lifecycle as (

    select * from {{ ref('fct_customer_lifecycle') }}

),

final as (

    select
        period_grain,
        period_start,
        coalesce(previous_stage, 'none') as from_stage,
        stage as to_stage,
        cast(count(*) as {{ dbt.type_bigint() }}) as customers,
        cast(sum(case when is_reactivated then 1 else 0 end) as {{ dbt.type_bigint() }}) as customers_reactivated
    from lifecycle
    group by period_grain, period_start, coalesce(previous_stage, 'none'), stage

)

select * from final
