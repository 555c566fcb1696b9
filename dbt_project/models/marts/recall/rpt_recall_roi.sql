-- One row per grain level and group of win-back contacts (see the `level` column): uplift of the
-- recall rate over the holdout with its normal-approximation interval (and a simultaneous one over
-- the supported groups of the level), incremental recalls and revenue, cost, ROI on gross margin
-- and cost per incremental recall, each with its interval, quality of the recalled customers and
-- the worth-recalling recommendation. The rules are in the 'recall_definitions' doc block.
{%- set z = var('recall_ci_z', 1.96) %}
{%- set fw_alpha = 1 - var('recall_familywise_confidence', 0.95) %}
{%- set min_n = var('recall_min_group_size', 100) %}
{%- set margin = var('recall_gross_margin_rate', 0.45) %}
{%- set ticket_cost = var('recall_cost_per_ticket', 30) %}
with contacts as (

    select * from {{ ref('fct_recall_contacts') }}

),

measures as (

    select
        campaign_id,
        campaign_name,
        channel,
        value_tier,
        service_demand,
        case when is_treatment then 1 else 0 end as treated,
        case when is_treatment then 0 else 1 end as held_out,
        case when is_treatment and is_reached then 1 else 0 end as reached,
        case when is_treatment and is_recalled then 1 else 0 end as treated_recalled,
        case when not is_treatment and is_recalled then 1 else 0 end as holdout_recalled,
        case when is_treatment then recall_revenue else 0 end as treated_revenue,
        case when not is_treatment then recall_revenue else 0 end as holdout_revenue,
        case when is_treatment then cast(recall_revenue as {{ liucun.type_double() }}) * recall_revenue else 0 end
            as treated_revenue_sq,
        case when not is_treatment then cast(recall_revenue as {{ liucun.type_double() }}) * recall_revenue else 0 end
            as holdout_revenue_sq,
        case when is_coupon_redeemed then 1 else 0 end as coupons_redeemed,
        contact_cost,
        incentive_cost,
        case when is_treatment and revenue_after_recall is not null then 1 else 0 end as quality_observed,
        case when is_treatment then coalesce(revenue_after_recall, 0) else 0 end as quality_revenue,
        case when is_treatment and is_churned_again is not null then 1 else 0 end as rechurn_observed,
        case when is_treatment and is_churned_again then 1 else 0 end as churned_again,
        lookback_net_revenue,
        lookback_tickets
    from contacts

),

{%- set sums %}
        count(*) as targets,
        sum(treated) as treated,
        sum(held_out) as holdout,
        sum(reached) as reached,
        sum(treated_recalled) as treated_recalled,
        sum(holdout_recalled) as holdout_recalled,
        sum(treated_revenue) as treated_revenue,
        sum(holdout_revenue) as holdout_revenue,
        sum(treated_revenue_sq) as treated_revenue_sq,
        sum(holdout_revenue_sq) as holdout_revenue_sq,
        sum(coupons_redeemed) as coupons_redeemed,
        sum(contact_cost) as contact_cost,
        sum(incentive_cost) as incentive_cost,
        sum(quality_observed) as quality_observed,
        sum(quality_revenue) as quality_revenue,
        sum(rechurn_observed) as rechurn_observed,
        sum(churned_again) as churned_again,
        sum(lookback_net_revenue) as lookback_net_revenue,
        sum(lookback_tickets) as lookback_tickets
{%- endset %}

grouped as (

    select
        'campaign_value_tier' as level, campaign_id, campaign_name, channel, value_tier,
        'all' as service_demand, {{ sums }}
    from measures
    group by campaign_id, campaign_name, channel, value_tier

    union all

    select
        'campaign', campaign_id, campaign_name, channel, 'all', 'all', {{ sums }}
    from measures
    group by campaign_id, campaign_name, channel

    union all

    select
        'channel', 'all', 'all', channel, 'all', 'all', {{ sums }}
    from measures
    group by channel

    union all

    select
        'value_tier_service', 'all', 'all', 'all', value_tier, service_demand, {{ sums }}
    from measures
    group by value_tier, service_demand

),

rates as (

    select
        grouped.*,
        {{ liucun.ratio('treated_recalled', 'treated') }} as recall_rate_treated,
        {{ liucun.ratio('holdout_recalled', 'holdout') }} as recall_rate_holdout,
        {{ liucun.ratio('treated_revenue', 'treated') }} as revenue_per_treated,
        {{ liucun.ratio('holdout_revenue', 'holdout') }} as revenue_per_holdout,
        cast(contact_cost as {{ liucun.type_double() }}) + cast(incentive_cost as {{ liucun.type_double() }}) as total_cost
    from grouped

),

uplifts as (

    select
        rates.*,
        recall_rate_treated - recall_rate_holdout as uplift,
        sqrt(
            recall_rate_treated * (1 - recall_rate_treated) / nullif(treated, 0)
            + recall_rate_holdout * (1 - recall_rate_holdout) / nullif(holdout, 0)
        ) as uplift_se,
        sqrt(
            power({{ liucun.se_of_mean('treated', 'treated_revenue', 'treated_revenue_sq') }}, 2)
            + power({{ liucun.se_of_mean('holdout', 'holdout_revenue', 'holdout_revenue_sq') }}, 2)
        ) as revenue_per_target_diff_se,
        (revenue_per_treated - revenue_per_holdout) * treated as incremental_revenue,
        count(case when treated >= {{ min_n }} and holdout >= {{ min_n }} then 1 end)
            over (partition by level) as simultaneous_family_size
    from rates

),

metrics as (

    select
        uplifts.*,
        uplift - {{ z }} * uplift_se as uplift_ci_low,
        uplift + {{ z }} * uplift_se as uplift_ci_high,
        uplift * treated as incremental_recalls,
        (uplift - {{ z }} * uplift_se) * treated as incremental_recalls_ci_low,
        (uplift + {{ z }} * uplift_se) * treated as incremental_recalls_ci_high,
        (revenue_per_treated - revenue_per_holdout - {{ z }} * revenue_per_target_diff_se) * treated
            as incremental_revenue_ci_low,
        (revenue_per_treated - revenue_per_holdout + {{ z }} * revenue_per_target_diff_se) * treated
            as incremental_revenue_ci_high,
        (incremental_revenue * {{ margin }} - total_cost) / nullif(total_cost, 0) as roi,
        case when uplift > 0 then total_cost / (uplift * treated) end as cost_per_incremental_recall,
        treated >= {{ min_n }} and holdout >= {{ min_n }} as has_enough_support,
        case when treated >= {{ min_n }} and holdout >= {{ min_n }} then
            {{ liucun.normal_quantile('1 - ' ~ fw_alpha ~ ' / (2.0 * simultaneous_family_size)') }}
        end as simultaneous_z,
        {{ liucun.ratio('lookback_net_revenue', 'targets') }} * {{ margin }} as past_margin_per_target,
        {{ liucun.ratio('lookback_tickets', 'targets') }} * {{ ticket_cost }} as service_cost_per_target
    from uplifts

),

bounds as (

    select
        metrics.*,
        uplift - simultaneous_z * uplift_se as uplift_simultaneous_ci_low,
        uplift + simultaneous_z * uplift_se as uplift_simultaneous_ci_high,
        -- ROI rises with incremental revenue (the cost is known), so its interval maps exactly
        (incremental_revenue_ci_low * {{ margin }} - total_cost) / nullif(total_cost, 0) as roi_ci_low,
        (incremental_revenue_ci_high * {{ margin }} - total_cost) / nullif(total_cost, 0) as roi_ci_high,
        -- cost / incremental recalls falls as they rise; no finite bound once the interval reaches 0
        case when incremental_recalls_ci_high > 0 and total_cost > 0
            then total_cost / incremental_recalls_ci_high end as cost_per_incremental_recall_ci_low,
        case when incremental_recalls_ci_low > 0 and total_cost > 0
            then total_cost / incremental_recalls_ci_low end as cost_per_incremental_recall_ci_high
    from metrics

),

final as (

    select
        level,
        campaign_id,
        campaign_name,
        channel,
        value_tier,
        service_demand,
        cast(targets as {{ dbt.type_bigint() }}) as targets,
        cast(treated as {{ dbt.type_bigint() }}) as treated,
        cast(holdout as {{ dbt.type_bigint() }}) as holdout,
        cast(reached as {{ dbt.type_bigint() }}) as reached,
        cast(treated_recalled as {{ dbt.type_bigint() }}) as treated_recalled,
        cast(holdout_recalled as {{ dbt.type_bigint() }}) as holdout_recalled,
        recall_rate_treated,
        recall_rate_holdout,
        uplift,
        uplift_se,
        uplift_ci_low,
        uplift_ci_high,
        cast(simultaneous_family_size as {{ dbt.type_bigint() }}) as simultaneous_family_size,
        simultaneous_z,
        uplift_simultaneous_ci_low,
        uplift_simultaneous_ci_high,
        incremental_recalls,
        incremental_recalls_ci_low,
        incremental_recalls_ci_high,
        cast(treated_revenue as decimal(18, 2)) as treated_recall_revenue,
        cast(holdout_revenue as decimal(18, 2)) as holdout_recall_revenue,
        incremental_revenue,
        incremental_revenue_ci_low,
        incremental_revenue_ci_high,
        cast(coupons_redeemed as {{ dbt.type_bigint() }}) as coupons_redeemed,
        cast(contact_cost as {{ liucun.type_double() }}) as contact_cost,
        cast(incentive_cost as decimal(18, 2)) as incentive_cost,
        total_cost,
        roi,
        roi_ci_low,
        roi_ci_high,
        cost_per_incremental_recall,
        cost_per_incremental_recall_ci_low,
        cost_per_incremental_recall_ci_high,
        {{ liucun.ratio('quality_revenue', 'quality_observed') }} as revenue_after_recall_per_recalled,
        cast(rechurn_observed as {{ dbt.type_bigint() }}) as recalled_rechurn_observed,
        {{ liucun.ratio('churned_again', 'rechurn_observed') }} as rechurn_rate,
        past_margin_per_target,
        service_cost_per_target,
        has_enough_support,
        case
            when value_tier = 'low' and service_demand = 'heavy' then 'low_value_heavy_service'
            when service_cost_per_target > past_margin_per_target then 'service_cost_exceeds_past_margin'
            when not has_enough_support then 'insufficient_support'
            when not uplift_ci_low > 0 then 'no_significant_uplift'
            when roi >= {{ var('recall_min_roi', 0) }} then 'roi_at_least_min'
            else 'roi_below_min'
        end as recommendation_reason
    from bounds

)

select
    final.*,
    case recommendation_reason
        when 'roi_at_least_min' then 'worth_recalling'
        when 'insufficient_support' then 'insufficient_data'
        else 'not_worth_recalling'
    end as recommendation
from final
