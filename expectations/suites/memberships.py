"""Marts gate, membership renewals: the observed curve counts every paid membership once and never
goes up, the fitted curve never goes up and its interval holds it, and every fitted plan has its curve."""

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


SUITES = [
    TableSuite("marts", "rpt_membership_renewals", build_rpt_membership_renewals_suite),
    TableSuite("marts", "rpt_sbg_fit", build_rpt_sbg_fit_suite),
]
