"""Marts gate, memberships. Renewals: the observed curve counts every paid membership once and never
goes up, the fitted curve never goes up and its interval holds it, and every fitted plan has its curve.
Revenue: each customer's and each month's MRR carries over from one month to the next, the closing
MRR is what the billed periods running on the as-of date add up to, the monthly report is the sum of
its customers, and dunning's recovery by retry adds up to its recovery by month."""

from __future__ import annotations

import great_expectations as gx
from great_expectations import expectations as gxe

from expectations.suites import GateParams, TableSuite, suite


def build_rpt_membership_renewals_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_membership_renewals",
        gxe.ExpectColumnValuesToBeBetween(column="observed_survival", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="fitted_survival", min_value=0, max_value=1),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select plan, renewals, observed_survival, fitted_survival, members_at_risk, "
                "lag(observed_survival) over (partition by plan order by renewals) as observed_before, "
                "lag(fitted_survival) over (partition by plan order by renewals) as fitted_before, "
                "lag(members_at_risk) over (partition by plan order by renewals) as at_risk_before "
                "from {batch}) as c "
                "where observed_survival > observed_before + 1e-12 or fitted_survival > fitted_before + 1e-12 "
                "or members_at_risk > at_risk_before"
            ),
            description="both curves and the members at risk never go up with the renewals",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} where fitted_survival_ci_low > fitted_survival + 1e-12 "
                "or fitted_survival_ci_high < fitted_survival - 1e-12"
            ),
            description="each interval holds its estimate",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select plan, members_at_risk from {batch} as b where renewals = 0) as s "
                "full outer join (select plan, count(*) as members from intermediate.int_membership_renewals "
                "group by plan) as m on s.plan = m.plan "
                "where s.plan is null or m.plan is null or s.members_at_risk <> m.members"
            ),
            description="each plan's curve starts with every paid membership of the plan",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from marts.rpt_sbg_fit as f "
                "left join (select plan, count(*) as rows_fitted, min(renewals) as first_t from {batch} as b "
                "where fitted_survival is not null group by plan) as c on f.plan = c.plan "
                "where c.plan is null or c.first_t <> 0 or c.rows_fitted < 13"
            ),
            description="every fitted plan has its curve from t = 0 over at least 12 renewals",
        ),
    )


def build_rpt_sbg_fit_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_sbg_fit",
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} as f "
                "join (select plan, count(*) as members, "
                "sum(case when is_cancellation_observed then 1 else 0 end) as cancelled "
                "from intermediate.int_membership_renewals group by plan) as m on f.plan = m.plan "
                "where f.n_memberships <> m.members or f.cancellations <> m.cancelled"
            ),
            description="each plan's fit covers every paid membership of the plan and its cancellations",
        ),
    )


def build_fct_customer_mrr_suite(params: GateParams) -> gx.ExpectationSuite:
    as_of = f"date '{params.as_of.isoformat()}'"
    return suite(
        "fct_customer_mrr",
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} as c "
                "join (select month_start, lag(month_start) over (order by month_start) as previous_month "
                "from intermediate.int_mrr_months) as m on c.month_start = m.month_start "
                "left join marts.fct_customer_mrr as p "
                "on p.customer_id = c.customer_id and p.month_start = m.previous_month "
                "where c.mrr_start <> coalesce(p.mrr_end, 0)"
            ),
            description="a customer's MRR at a month's start is their MRR at the previous month's end "
                        "(0 after a month without a row)",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select coalesce(sum(b.mrr_end), 0) as closing from {batch} as b "
                "where b.month_start = (select max(month_start) from intermediate.int_mrr_months)) as m "
                "cross join (select coalesce(sum(mrr), 0) as running from intermediate.int_membership_mrr_segments "
                f"where customer_id is not null and valid_from <= {as_of} "
                f"and (valid_to is null or valid_to > {as_of})) as s "
                "where m.closing <> s.running"
            ),
            description="the as-of month's closing MRR is the sum of the billed periods running on the as-of date",
        ),
    )


def build_rpt_mrr_movements_suite(params: GateParams) -> gx.ExpectationSuite:
    sums = ", ".join(f"sum({c}) as {c}" for c in _MRR_SUMS)
    differs = " or ".join(f"r.{c} <> coalesce(f.{c}, 0)" for c in _MRR_SUMS)
    return suite(
        "rpt_mrr_movements",
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                f"select * from {{batch}} as r left join (select month_start, {sums} "
                "from marts.fct_customer_mrr group by month_start) as f on r.month_start = f.month_start "
                f"where {differs}"
            ),
            description="each month's MRR and movements are the sums of its customers' (fct_customer_mrr)",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select month_start, mrr_start, customers_start, "
                "lag(mrr_end) over (order by month_start) as mrr_end_before, "
                "lag(customers_end) over (order by month_start) as customers_end_before from {batch}) as c "
                "where mrr_start <> coalesce(mrr_end_before, 0) "
                "or customers_start <> coalesce(customers_end_before, 0)"
            ),
            description="a month starts with the MRR and customers the previous month ended with",
        ),
        gxe.ExpectColumnValuesToBeBetween(column="gross_mrr_churn_rate", min_value=0, max_value=1,
                                          description="gross MRR churn never exceeds the MRR at the start"),
        gxe.ExpectColumnValuesToBeBetween(column="arpa", min_value=0),
    )


_MRR_SUMS = ("mrr_start", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr",
             "mrr_end")


def build_rpt_dunning_recovery_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_dunning_recovery",
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} as r full outer join (select month_start, count(*) as failed "
                "from intermediate.int_dunning_invoices group by month_start) as i "
                "on r.month_start = i.month_start "
                "where r.month_start is null or i.month_start is null or r.failed_invoices <> i.failed"
            ),
            description="every invoice whose first attempt failed is in its month, once",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} as r left join (select month_start, "
                "max(cumulative_recovered_invoices) as recovered, max(cumulative_recovered_amount) as amount "
                "from marts.rpt_dunning_attempts group by month_start) as a on r.month_start = a.month_start "
                "where r.recovered_invoices <> coalesce(a.recovered, 0) "
                "or r.recovered_amount <> coalesce(a.amount, 0)"
            ),
            description="the recovery through the last retry is the month's recovery",
        ),
        gxe.ExpectColumnValuesToBeBetween(column="recovery_rate", min_value=0, max_value=1),
    )


SUITES = [
    TableSuite("marts", "rpt_membership_renewals", build_rpt_membership_renewals_suite),
    TableSuite("marts", "rpt_sbg_fit", build_rpt_sbg_fit_suite),
    TableSuite("marts", "fct_customer_mrr", build_fct_customer_mrr_suite),
    TableSuite("marts", "rpt_mrr_movements", build_rpt_mrr_movements_suite),
    TableSuite("marts", "rpt_dunning_recovery", build_rpt_dunning_recovery_suite),
]
