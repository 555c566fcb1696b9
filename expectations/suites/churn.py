"""Marts gate suites for the churn marts (registered in the marts layer by expectations.suites)."""

from __future__ import annotations

import great_expectations as gx
from great_expectations import expectations as gxe

from expectations.suites import GateParams, TableSuite, suite


def build_fct_churn_events_suite(params: GateParams) -> gx.ExpectationSuite:
    # may be empty (no orders yet): no row-count floor
    return suite(
        "fct_churn_events",
        gxe.ExpectColumnValuesToBeInSet(
            column="detection",
            value_set=["cancellation_completed", "membership_ended_non_payment", "inactivity"]),
        gxe.ExpectColumnValuesToBeInSet(column="voluntariness", value_set=["voluntary", "involuntary"]),
        gxe.ExpectColumnValuesToBeInSet(
            column="churn_type",
            value_set=["natural", "soft", "hard", "experience", "involuntary", "unknown"]),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} where churn_date < last_purchase_date "
                f"or churn_date > date '{params.as_of.isoformat()}' "
                "or (reactivated_on is not null and reactivated_on <= churn_date)"
            ),
            description="a churn follows its last purchase, is not in the future and precedes its reactivation",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} where (type_basis = 'stated_reason' and reason_category is null) "
                "or (type_basis = 'no_evidence' and churn_type <> 'unknown') "
                "or (type_basis = 'non_payment' and voluntariness <> 'involuntary')"
            ),
            description="the churn type is backed by its basis (a stated reason, non-payment, or nothing)",
        ),
    )


def build_rpt_churn_drivers_suite(params: GateParams) -> gx.ExpectationSuite:
    # may be empty (sources without tickets, surveys, billing or events): no row-count floor
    return suite(
        "rpt_churn_drivers",
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} where not (odds_ratio_ci_lower <= odds_ratio "
                "and odds_ratio <= odds_ratio_ci_upper and odds_ratio_ci_lower > 0)"
            ),
            description="the odds-ratio interval contains the odds ratio",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select d.driver from {batch} as d join ("
                "  select driver, sum(exposed) as exposed, sum(exposed_churned) as exposed_churned, "
                "  sum(exposed + unexposed) as at_risk, sum(exposed_churned + unexposed_churned) as churned "
                "  from intermediate.int_churn_driver_period_counts group by driver) as c "
                "on d.driver = c.driver "
                "where d.exposed <> c.exposed or d.exposed_churned <> c.exposed_churned "
                "or d.exposed + d.unexposed <> c.at_risk "
                "or d.exposed_churned + d.unexposed_churned <> c.churned "
                "or d.exposed_churned > d.exposed or d.unexposed_churned > d.unexposed"
            ),
            description="support counts add up to the per-period 2x2 tables",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} where (is_ranked and driver_rank is null) "
                "or (not is_ranked and driver_rank is not null) "
                "or (churn_rate_exposed < 0 or churn_rate_exposed > 1) "
                "or (churn_rate_unexposed < 0 or churn_rate_unexposed > 1)"
            ),
            description="only ranked drivers have a rank; churn rates are between 0 and 1",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select count(*) as n, count(distinct driver_rank) as r, "
                "max(driver_rank) as m from {batch} where is_ranked) as x where n <> r or n <> coalesce(m, 0)"
            ),
            description="ranks are 1..n without gaps or ties",
        ),
    )


SUITES = [
    TableSuite("marts", "fct_churn_events", build_fct_churn_events_suite),
    TableSuite("marts", "rpt_churn_drivers", build_rpt_churn_drivers_suite),
]
